// A strict TypeScript consumer of the published declarations. It is type-checked
// (tsc --noEmit --strict), not run: a wrong or loose declaration fails the build.
import {
  crmMessageAdd,
  sendToCrmItem,
  init,
  Client,
  isBitrix24Error,
  type Bitrix24Error,
  type Bitrix24ErrorCode,
  type CrmChat,
  type CrmMessageAddParams,
  type Bx24Like,
  type SentToCrmItem,
  type SentToCrmItemEntry,
  memoryTokenStore,
  webStorageTokenStore,
  type TokenStore,
  type StoredTokens,
} from 'b24-openlines';

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_ok?: T): void {}

export async function seedExample(): Promise<number> {
  await init();
  const id = await crmMessageAdd(
    { crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'Hello' },
    { webhookUrl: 'https://portal.example/rest/1/secret/' },
  );
  expectType<Equals<typeof id, number>>();
  return id;
}

export async function everyCall(signal: AbortSignal): Promise<void> {
  const client = Client.fromWebhook('https://portal.example/rest/1/secret/', { timeoutMs: 5000 });
  const token = Client.fromToken({
    domain: 'portal.example',
    accessToken: 't',
    refresh: async () => ({ accessToken: 'u' }),
  });
  const params: CrmMessageAddParams = { crmEntityType: 'lead', crmEntity: '1', userId: 1, chatId: 2, message: 'm' };
  const id = await client.crmMessageAdd(params, { signal, timeoutMs: 100 });
  expectType<Equals<typeof id, number>>();
  const chats = await token.crmChatGet({ crmEntityType: 'deal', crmEntity: 288, activeOnly: false });
  expectType<Equals<typeof chats, CrmChat[]>>();
  const first: number | undefined = chats[0]?.chatId;
  void first;
  const last = await client.crmChatGetLastId({ crmEntityType: 'deal', crmEntity: 288 });
  expectType<Equals<typeof last, number>>();
  const added: number = await client.crmChatUserAdd({ crmEntityType: 'deal', crmEntity: 288, userId: 14 });
  const removed: number = await client.crmChatUserDelete({ crmEntityType: 'deal', crmEntity: 288, userId: 14, chatId: 8773 });
  const created: boolean = await client.crmLeadCreate({ chatId: 8900 });
  const anything: unknown = await client.call('profile');
  void [added, removed, created, anything];
  await crmMessageAdd(params, { client });
  await crmMessageAdd(params, { accessToken: 't', clientEndpoint: 'https://portal.example/rest/' });
  const origin: string | undefined = (await client.ready()).portal;
  const refreshes: number = token.refreshes;
  void [origin, refreshes];
}

export async function toCrmItems(signal: AbortSignal): Promise<void> {
  const sent = await sendToCrmItem(
    { crmEntityType: 'deal', crmEntity: 288, message: 'Hello' },
    { webhookUrl: 'https://portal.example/rest/1/secret/', join: false, verify: true },
  );
  expectType<Equals<typeof sent, SentToCrmItem>>();
  const where: [number, number, string | null, number, boolean] = [sent.id, sent.chatId, sent.connectorId, sent.userId, sent.joined];
  void where;
  const client = Client.fromWebhook('https://portal.example/rest/1/secret/');
  const one = await client.sendToCrmItem({ crmEntityType: 'lead', crmEntity: '101', message: 'm', connectorId: 'telegrambot' }, { leave: true, signal });
  if (one.leaveError) {
    const code: Bitrix24ErrorCode = one.leaveError.code;
    void code;
  }
  const deals = [1, 2, 3].map((id) => ({ crmEntityType: 'deal' as const, crmEntity: id, message: `deal ${id}` }));
  const entries = await client.sendToCrmItems(deals, { join: true, halt: false, onProgress: (p) => void p.done });
  expectType<Equals<typeof entries, SentToCrmItemEntry[]>>();
  for (const e of entries) {
    if (e.ok) {
      const chat: number = e.chatId;
      void chat;
    } else if (e.error.code === 'NO_ACTIVE_CHAT' || e.error.code === 'CANNOT_JOIN') {
      void e.error.description;
    }
  }
  await client.sendToCrmItem({ crmEntityType: 'deal', crmEntity: 1, message: 'm'.repeat(30000) }, { truncate: true });
  await client.crmMessageAddMany([], { truncate: true });
  // @ts-expect-error truncate is for message sends
  await client.crmChatGet({ crmEntityType: 'deal', crmEntity: 1 }, { truncate: true });
  // @ts-expect-error the item and the text are required
  await client.sendToCrmItem({ crmEntityType: 'deal', message: 'm' });
  // @ts-expect-error join is a boolean
  await client.sendToCrmItem({ crmEntityType: 'deal', crmEntity: 1, message: 'm' }, { join: 'yes' });
}

export async function withStores(): Promise<void> {
  const store: TokenStore = memoryTokenStore({ accessToken: 'a', refreshToken: 'r', expiresAt: Date.now() + 1000 });
  const client = Client.fromToken({
    clientEndpoint: 'https://portal.example/rest/',
    store,
    refresh: async (current: StoredTokens | null) => ({ access_token: 'b', refresh_token: `${current?.refreshToken}-2`, expires_in: 3600 }),
  });
  await client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 });
  const local: TokenStore = webStorageTokenStore('b24-tokens', { getItem: () => null, setItem: () => {}, removeItem: () => {} });
  const held = await local.get();
  void held?.expiresAt;
  // @ts-expect-error a store has get, set and lock
  Client.fromToken({ domain: 'portal.example', store: { get: () => null } });
}

export function handle(e: unknown): string {
  if (isBitrix24Error(e)) {
    const err: Bitrix24Error = e;
    const code: Bitrix24ErrorCode = err.code;
    const fields: [string, number, string, string, string | undefined, boolean, 'notExecuted' | 'failed' | 'unknown'] = [
      err.name, err.status, err.method, err.description, err.argument, err.retryable, err.outcome,
    ];
    void fields;
    if (err.code === 'CHAT_NOT_IN_CRM' || err.kind === 'rateLimited' || err.kind === 'serverError') return code;
    if (err.outcome === 'unknown') return 'check the chat before sending again';
    return err.message;
  }
  return 'other';
}

// Wrong calls must not compile.
export async function wrong(): Promise<void> {
  // @ts-expect-error crmEntityType is one of four values
  await crmMessageAdd({ crmEntityType: 'order', crmEntity: 1, userId: 1, chatId: 1, message: 'm' }, { webhookUrl: 'x' });
  // @ts-expect-error message is required
  await crmMessageAdd({ crmEntityType: 'deal', crmEntity: 1, userId: 1, chatId: 1 }, { webhookUrl: 'x' });
  // @ts-expect-error the result is a number, not a string
  const s: string = await crmMessageAdd({ crmEntityType: 'deal', crmEntity: 1, userId: 1, chatId: 1, message: 'm' });
  void s;
  // @ts-expect-error clients come from the factories
  void new Client();
  // @ts-expect-error outcome is one of three values
  void ((e: Bitrix24Error) => e.outcome === 'maybe');
  // @ts-expect-error timeoutMs is a number
  await Client.fromWebhook('x').crmChatGet({ crmEntityType: 'deal', crmEntity: 1 }, { timeoutMs: 'soon' });
}

export async function inFrame(bx24: Bx24Like): Promise<number> {
  const client: Client = await Client.fromBx24(bx24, { protocol: 'https', refreshTimeoutMs: 5000 });
  await crmMessageAdd({ crmEntityType: 'deal', crmEntity: 1, userId: 1, chatId: 1, message: 'm' }, { bx24 });
  return client.crmMessageAdd({ crmEntityType: 'deal', crmEntity: 1, userId: 1, chatId: 1, message: 'm' });
}

export async function manyExample(webhook: string): Promise<number> {
  const client = Client.fromWebhook(webhook, {
    limits: 'enterprise',
    retry: { retries: 2 },
    onRequest: (e) => { expectType<Equals<typeof e.waitedMs, number>>(true); },
  });
  const items: CrmMessageAddParams[] = [{ crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'Hi' }];
  const sent = await client.crmMessageAddMany(items, { onProgress: (p) => { expectType<Equals<typeof p.unknown, number>>(true); } });
  let delivered = 0;
  for (const e of sent) {
    if (e.ok) delivered += e.id;
    else expectType<Equals<typeof e.error, Bitrix24Error>>(true);
  }
  const named = await client.batch({ leads: ['crm.lead.list', { select: ['ID'] }] }, { halt: true });
  const leads = named.leads;
  if (leads?.ok) expectType<Equals<typeof leads.result, unknown>>(true);
  const listed = await client.batch([['server.time']]);
  expectType<Equals<typeof listed, import('b24-openlines').BatchEntry[]>>(true);
  const page = await client.callPage('crm.lead.list', {});
  expectType<Equals<typeof page.next, number | undefined>>(true);
  for await (const lead of client.list<{ ID: string }>('crm.lead.list')) delivered += Number(lead.ID);
  const off = Client.fromWebhook(webhook, { limits: false, retry: false });
  void off;
  return delivered;
}
