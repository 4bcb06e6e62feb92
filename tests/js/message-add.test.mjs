// crmMessageAdd as a user calls it: the installed package against the local ctx.portal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crmMessageAdd, Client, isBitrix24Error } from 'b24-openlines';
import { startPortal, rejectionOf, seed, usePortal } from './portal.mjs';

const ctx = usePortal();

/** Asserts `e` is a Bitrix24Error with these fields. */
function assertError(e, fields) {
  assert.ok(e instanceof Error, `not an Error: ${e}`);
  assert.ok(isBitrix24Error(e), `not a Bitrix24Error: ${e}`);
  assert.equal(e.name, 'Bitrix24Error');
  for (const [k, v] of Object.entries(fields)) assert.deepEqual(e[k], v, `${k} of ${e.message}`);
}

test('the seed example resolves to the id of a message the portal delivered', async () => {
  const before = (await ctx.portal.messages()).length;
  const id = await crmMessageAdd(seed, { webhookUrl: ctx.portal.webhook });
  assert.equal(typeof id, 'number');
  assert.ok(Number.isInteger(id) && id > 0);
  const ledger = await ctx.portal.messages();
  assert.equal(ledger.length, before + 1, 'exactly one message delivered');
  const entry = ledger.at(-1);
  assert.equal(entry.id, id);
  assert.equal(entry.chatId, 8773);
  assert.equal(entry.userId, 12);
  assert.equal(entry.message, 'Hello');
});

test('a Client sends to the same portal, ids increase, text arrives unchanged', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  assert.equal(client.portal, undefined, 'known once the client is ready');
  assert.equal((await client.ready()).portal, ctx.portal.url);
  const text = 'Привет, [B]мир[/B] & "quotes" \u{1F600}';
  const a = await client.crmMessageAdd({ ...seed, message: text });
  const b = await client.crmMessageAdd(seed);
  assert.equal(b, a + 1);
  const entry = (await ctx.portal.messages()).find((m) => m.id === a);
  assert.equal(entry.message, text);
});

test('the free function can use an existing client, its auth and its timeout', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook, { timeoutMs: 1000 });
  const id = await crmMessageAdd(seed, { client });
  assert.equal((await ctx.portal.messages()).at(-1).id, id);
  await ctx.portal.faults([{ method: 'imopenlines.crm.message.add', kind: 'delay', delayMs: 3000 }]);
  const e = await rejectionOf(crmMessageAdd(seed, { client }));
  assert.equal(e.code, 'TIMEOUT', 'the client default applies');
  await new Promise((r) => setTimeout(r, 2100));
});

test('ids and types given as strings are accepted as the portal accepts them', async () => {
  const id = await crmMessageAdd(
    { crmEntityType: 'DEAL', crmEntity: '288', userId: '12', chatId: '8773', message: 'strings' },
    { webhookUrl: ctx.portal.webhook },
  );
  assert.equal((await ctx.portal.messages()).find((m) => m.id === id).message, 'strings');
});

test('every error code of the method arrives as a Bitrix24Error and nothing is delivered', async (t) => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const { webhook: noCrmWebhook } = await ctx.portal.admin('webhooks', { userId: 13 });
  const cases = [
    ['portal ERROR_ARGUMENT', () => client.call('imopenlines.crm.message.add', { CRM_ENTITY_TYPE: 'deal' }),
      { code: 'ERROR_ARGUMENT', status: 400, argument: 'CRM_ENTITY', kind: 'invalidArgument' }],
    ['caller without CRM access', () => crmMessageAdd(seed, { webhookUrl: noCrmWebhook }),
      { code: 'ACCESS_DENIED', status: 403, kind: 'rejected' }],
    ['sender without CRM access', () => client.crmMessageAdd({ ...seed, userId: 13 }),
      { code: 'ACCESS_DENIED', status: 403 }],
    ['finished dialog', () => client.crmMessageAdd({ ...seed, chatId: 8772 }),
      { code: 'CHAT_NOT_IN_CRM', status: 400 }],
    ['chat of another item', () => client.crmMessageAdd({ ...seed, chatId: 8801 }),
      { code: 'CHAT_NOT_IN_CRM', status: 400 }],
    ['sender not in the chat', () => client.crmMessageAdd({ ...seed, userId: 14 }),
      { code: 'CANCELED', status: 400 }],
  ];
  for (const [name, call, fields] of cases) {
    await t.test(name, async () => {
      const before = (await ctx.portal.messages()).length;
      const e = await rejectionOf(call());
      assertError(e, { method: 'imopenlines.crm.message.add', retryable: false, ...fields });
      assert.ok(e.description.length > 0);
      assert.ok(e.message.includes(fields.code));
      assert.equal((await ctx.portal.messages()).length, before, 'nothing delivered');
    });
  }
  await t.test('send failure (MESSAGE_ADD_ERROR)', async () => {
    await ctx.portal.faults([{ method: 'imopenlines.crm.message.add', kind: 'message_add_error' }]);
    const e = await rejectionOf(client.crmMessageAdd(seed));
    assertError(e, { code: 'MESSAGE_ADD_ERROR', status: 400, retryable: false });
  });
});

test('the portal can be told to answer MESSAGE_ADD_ERROR for non-members, as older docs say', async () => {
  const legacy = await startPortal(['--non-member-code', 'MESSAGE_ADD_ERROR']);
  try {
    const e = await rejectionOf(crmMessageAdd({ ...seed, userId: 14 }, { webhookUrl: legacy.webhook }));
    assertError(e, { code: 'MESSAGE_ADD_ERROR', status: 400 });
  } finally {
    await legacy.stop();
  }
});

test('validation rejects bad params in the portal order, with no request sent', async (t) => {
  const cases = [
    [{}, 'CRM_ENTITY_TYPE', 'is null or empty'],
    [{ ...seed, crmEntityType: 'order' }, 'CRM_ENTITY_TYPE', 'invalid type'],
    [{ ...seed, crmEntity: undefined, userId: 0 }, 'CRM_ENTITY', 'is null or empty'],
    [{ ...seed, crmEntity: -1 }, 'CRM_ENTITY', 'invalid type'],
    [{ ...seed, userId: 1.5 }, 'USER_ID', 'invalid type'],
    [{ ...seed, userId: '12abc' }, 'USER_ID', 'invalid type'],
    [{ ...seed, chatId: null }, 'CHAT_ID', 'is null or empty'],
    [{ ...seed, chatId: NaN }, 'CHAT_ID', ''],
    [{ ...seed, chatId: Infinity }, 'CHAT_ID', 'invalid type'],
    [{ ...seed, chatId: 2 ** 60 }, 'CHAT_ID', 'invalid type'],
    [{ ...seed, message: '' }, 'MESSAGE', 'is null or empty'],
    [{ ...seed, message: '0' }, 'MESSAGE', 'is null or empty'],
    [{ ...seed, message: 42 }, 'MESSAGE', 'invalid type'],
    [{ ...seed, message: ['a'] }, 'MESSAGE', 'invalid type'],
    [null, 'params', 'must be an object'],
    ['deal', 'params', 'must be an object'],
    [[1, 2], 'params', 'must be an object'],
  ];
  const requestsBefore = (await ctx.portal.requests()).length;
  for (const [params, argument, text] of cases) {
    await t.test(`${JSON.stringify(params)} -> ${argument}`, async () => {
      const e = await rejectionOf(crmMessageAdd(params, { webhookUrl: ctx.portal.webhook }));
      assertError(e, { code: 'ERROR_ARGUMENT', argument, status: 0, kind: 'invalidArgument', retryable: false });
      assert.ok(e.message.includes(text), e.message);
    });
  }
  assert.equal((await ctx.portal.requests()).length, requestsBefore, 'no request reached the portal');
});

test('inputs of any shape become errors, never crashes, and the module keeps working', async () => {
  const circular = { ...seed };
  circular.self = circular;
  const odd = [
    () => crmMessageAdd(undefined),
    () => crmMessageAdd(seed),
    () => crmMessageAdd(seed, 'not options'),
    () => crmMessageAdd(seed, 42),
    () => crmMessageAdd(seed, { webhookUrl: 42 }),
    () => crmMessageAdd(seed, { webhookUrl: 'not a url' }),
    () => crmMessageAdd(seed, { webhookUrl: ctx.portal.webhook, timeoutMs: -5 }),
    () => crmMessageAdd(seed, { webhookUrl: ctx.portal.webhook, timeoutMs: 'soon' }),
    () => crmMessageAdd(seed, { webhookUrl: ctx.portal.webhook, signal: {} }),
    () => crmMessageAdd(seed, { accessToken: 'x' }),
    () => crmMessageAdd(seed, { accessToken: 'x', domain: 'a/b' }),
    () => crmMessageAdd(seed, { accessToken: 'x', domain: 'p.example', refresh: 'no' }),
    () => crmMessageAdd(seed, { client: {} }),
    () => crmMessageAdd({ ...seed, crmEntity: 10n }, { webhookUrl: ctx.portal.webhook }),
    () => crmMessageAdd({ ...seed, message: Symbol('m') }, { webhookUrl: ctx.portal.webhook }),
    () => crmMessageAdd({ ...seed, message: () => 'x' }, { webhookUrl: ctx.portal.webhook }),
    () => crmMessageAdd({ ...seed, message: new Date() }, { webhookUrl: ctx.portal.webhook }),
    () => crmMessageAdd(new Proxy({}, { get() { throw new Error('trap'); } }), { webhookUrl: ctx.portal.webhook }),
    () => Client.fromWebhook(ctx.portal.webhook).call('imopenlines.crm.chat.get', circular),
    () => Client.fromWebhook(ctx.portal.webhook).call('imopenlines.crm.chat.get', { n: 10n }),
    () => Client.fromWebhook(ctx.portal.webhook).call('../_portal/reset'),
    () => Client.fromWebhook(ctx.portal.webhook).call(42),
  ];
  for (const call of odd) {
    let e;
    try {
      e = await rejectionOf(call());
    } catch (thrown) {
      e = thrown; // a synchronous throw is acceptable only as a Bitrix24Error
    }
    assert.ok(isBitrix24Error(e), `${call}: ${e}`);
    assert.ok(['ERROR_ARGUMENT', 'NO_AUTH'].includes(e.code), `${call}: ${e.code}`);
  }
  for (const bad of [undefined, 42, 'ftp://x/rest/1/s/', 'https://p.example/rest/x/s/']) {
    const e = await rejectionOf(Client.fromWebhook(bad).ready());
    assert.ok(isBitrix24Error(e) && e.code === 'NO_AUTH', String(e));
  }
  assert.equal(typeof (await crmMessageAdd(seed, { webhookUrl: ctx.portal.webhook })), 'number', 'still works');
});
