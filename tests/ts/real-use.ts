// The declarations against code as users write it (the README's snippets among them),
// type-checked like consumer.ts (strict, exactOptionalPropertyTypes,
// noUncheckedIndexedAccess). Each function below failed on the declarations before it.
import {
  crmMessageAdd,
  sendToCrmItem,
  Client,
  isBitrix24Error,
  type BatchCommand,
  type BatchEntry,
  type CrmChat,
  type CrmEntityType,
  type CrmMessageAddParams,
  type FrameClient,
  type ListItem,
  type Page,
  type Placement,
  type SendToCrmItemParams,
} from 'b24-openlines';

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_ok?: T): void {}

// `Client.fromFrame()` resolves to a client whose `placement` is always set, with string
// options: the README's frame snippet. Other clients keep `placement` optional.
export async function frameClient(): Promise<CrmChat[]> {
  const client = await Client.fromFrame();
  expectType<Equals<typeof client, FrameClient>>();
  const { placement, options } = client.placement;
  expectType<Equals<typeof placement, string>>();
  expectType<Equals<typeof options, Record<string, string>>>();
  // Under noUncheckedIndexedAccess a key may be absent (`DEFAULT` has none): check it.
  expectType<Equals<typeof options.ID, string | undefined>>();
  if (options.ID === undefined) return [];
  const ready: FrameClient = await client.ready();
  await ready.fitWindow();
  const webhook = Client.fromWebhook('https://portal.example/rest/1/secret/');
  expectType<Equals<typeof webhook.placement, Placement | undefined>>();
  // @ts-expect-error a webhook client is no frame client
  const notFrame: FrameClient = webhook;
  void notFrame;
  return client.crmChatGet({ crmEntityType: 'deal', crmEntity: options.ID });
}

// `call`, `callPage` and `list` take the result's type, consistently: `call<T>` and
// `callPage<T>` type the `result`, `list<T>` one item (of pages `callPage<T[]>`); by
// default a list's items are records.
export async function resultTypes(client: Client): Promise<void> {
  interface Lead { ID: string; TITLE: string }
  const profile = await client.call<{ ID: string; ADMIN: boolean }>('profile');
  expectType<Equals<typeof profile, { ID: string; ADMIN: boolean }>>();
  const anything = await client.call('server.time');
  expectType<Equals<typeof anything, unknown>>();
  const page = await client.callPage<Lead[]>('crm.lead.list', { select: ['ID', 'TITLE'] });
  expectType<Equals<typeof page, Page<Lead[]>>>();
  const firstPage = await client.callPage('crm.lead.list');
  expectType<Equals<typeof firstPage.result, ListItem[]>>();
  for await (const lead of client.list<Lead>('crm.lead.list')) {
    const same: (typeof page.result)[number] = lead;
    void same.TITLE.toUpperCase();
  }
  // The README's list snippet: `lead.ID` of an untyped list is readable (and unknown).
  for await (const lead of client.list('crm.lead.list', { select: ['ID', 'TITLE'] })) {
    expectType<Equals<typeof lead, Record<string, unknown>>>();
    expectType<Equals<typeof lead.ID, unknown>>();
  }
}

// A keyed batch keeps its command names in the result's type.
export async function keyedBatch(client: Client, more: Record<string, BatchCommand>): Promise<number> {
  const named = await client.batch({ leads: ['crm.lead.list', { select: ['ID'] }], time: ['server.time'] }, { halt: true });
  expectType<Equals<typeof named, Record<'leads' | 'time', BatchEntry>>>();
  // Known names need no `?.` under noUncheckedIndexedAccess.
  const done = named.leads.ok && named.time.ok ? 2 : 0;
  // @ts-expect-error no command of that name
  void named.profile;
  const any = await client.batch(more);
  expectType<Equals<typeof any, Record<string, BatchEntry>>>();
  const listed = await client.batch([['server.time'], ['profile', {}]]);
  expectType<Equals<typeof listed, BatchEntry[]>>();
  const fixed: readonly BatchCommand[] = [['server.time']];
  return done + (await client.batch(fixed)).length;
}

// Items built with `map` (whose `crmEntityType: 'deal'` TypeScript widens to `string`)
// go to the mass sends without `as const`; a wrong literal is still refused.
export async function mappedItems(client: Client): Promise<void> {
  const deals = [288, 290, 294];
  const items = deals.map((id) => ({ crmEntityType: 'deal', crmEntity: id, userId: 12, chatId: 8773, message: 'shipped' }));
  expectType<Equals<(typeof items)[number]['crmEntityType'], string>>();
  await client.crmMessageAddMany(items);
  await client.sendToCrmItems(deals.map((id) => ({ crmEntityType: 'deal', crmEntity: id, message: 'shipped' })));
  const toItems: { crmEntityType: string; crmEntity: number; message: string }[] = [];
  for (const id of deals) toItems.push({ crmEntityType: 'deal', crmEntity: id, message: 'shipped' });
  await client.sendToCrmItems(toItems, { join: true });
  const typed: readonly CrmMessageAddParams[] = [{ crmEntityType: 'lead', crmEntity: 101, userId: 12, chatId: 8801, message: 'm' }];
  await client.crmMessageAddMany(typed);
  const params: SendToCrmItemParams[] = [{ crmEntityType: 'contact', crmEntity: 201, message: 'm' }];
  await client.sendToCrmItems(params);
  // @ts-expect-error 'order' is not a CRM item type
  await client.crmMessageAddMany([{ crmEntityType: 'order', crmEntity: 1, userId: 1, chatId: 1, message: 'm' }]);
  // @ts-expect-error one wrong item among right ones
  await client.sendToCrmItems([{ crmEntityType: 'deal', crmEntity: 1, message: 'm' }, { crmEntityType: 'order', crmEntity: 2, message: 'm' }]);
  // @ts-expect-error a literal kept with as const is checked too
  await client.sendToCrmItems(deals.map((id) => ({ crmEntityType: 'order' as const, crmEntity: id, message: 'm' })));
  // @ts-expect-error the rest of an item is checked as before
  await client.crmMessageAddMany(deals.map((id) => ({ crmEntityType: 'deal', crmEntity: id, chatId: 8773, message: 'm' })));
}

// `crmEntityType` in lower case, upper case or capitalized, as the portal takes it.
export async function entityTypeCase(client: Client): Promise<void> {
  const upper: CrmMessageAddParams = { crmEntityType: 'DEAL', crmEntity: 288, userId: 12, chatId: 8773, message: 'm' };
  await crmMessageAdd(upper, { client });
  await client.crmChatGet({ crmEntityType: 'Deal', crmEntity: 288 });
  await client.sendToCrmItem({ crmEntityType: 'LEAD', crmEntity: 101, message: 'm' });
  await client.crmChatUserAdd({ crmEntityType: 'Contact', crmEntity: 201, userId: 12 });
  const every: CrmEntityType[] = ['lead', 'LEAD', 'Lead', 'deal', 'DEAL', 'Deal', 'company', 'COMPANY', 'Company', 'contact', 'CONTACT', 'Contact'];
  void every;
  // @ts-expect-error not a CRM item type in any case
  await client.crmChatGet({ crmEntityType: 'ORDER', crmEntity: 1 });
}

// `verify` and `settleMs` belong to message sends only.
export async function verifyOnSends(client: Client, signal: AbortSignal): Promise<void> {
  const params: CrmMessageAddParams = { crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'm' };
  await client.crmMessageAdd(params, { verify: true, settleMs: 1000, signal });
  await crmMessageAdd(params, { client, verify: true, settleMs: 1000 });
  await crmMessageAdd(params, { webhookUrl: 'https://portal.example/rest/1/secret/', verify: true });
  await client.sendToCrmItem({ crmEntityType: 'deal', crmEntity: 288, message: 'm' }, { verify: true, settleMs: 10 });
  await sendToCrmItem({ crmEntityType: 'deal', crmEntity: 288, message: 'm' }, { client, verify: true });
  await client.crmMessageAddMany([params], { verify: true, settleMs: 10 });
  await client.sendToCrmItems([{ crmEntityType: 'deal', crmEntity: 288, message: 'm' }], { verify: true, settleMs: 10 });
  const verified = Client.fromWebhook('https://portal.example/rest/1/secret/', { verify: true, settleMs: 10_000 });
  void verified;
  // @ts-expect-error a read verifies nothing
  await client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }, { verify: true });
  // @ts-expect-error a read verifies nothing
  await client.crmChatGetLastId({ crmEntityType: 'deal', crmEntity: 288 }, { settleMs: 10 });
  // @ts-expect-error not a message send
  await client.crmChatUserAdd({ crmEntityType: 'deal', crmEntity: 288, userId: 14 }, { verify: true });
  // @ts-expect-error not a message send
  await client.crmLeadCreate({ chatId: 8900 }, { verify: true });
  // @ts-expect-error call sends any method: nothing to verify
  await client.call('profile', {}, { verify: true });
  // @ts-expect-error a list read
  await client.callPage('crm.lead.list', {}, { settleMs: 10 });
  // @ts-expect-error a list read
  void client.list('crm.lead.list', {}, { verify: true });
  // @ts-expect-error batch runs any commands
  await client.batch([['server.time']], { verify: true });
}

// `Client.fromWebhook` takes what an environment variable holds (a missing URL rejects the
// first call with NO_AUTH).
export function webhookFromEnv(env: { readonly [name: string]: string | undefined }): Client {
  const url = env.B24_WEBHOOK_URL;
  expectType<Equals<typeof url, string | undefined>>();
  return Client.fromWebhook(url, { timeoutMs: 5000 });
}

// Errors may carry a hint: what to do.
export function hintOf(e: unknown): string {
  if (!isBitrix24Error(e)) return '';
  expectType<Equals<typeof e.hint, string | undefined>>();
  // @ts-expect-error the error's fields are read-only
  e.hint = 'x';
  return e.hint ?? e.description;
}
