// sendToCrmItem: a message to a CRM item's customer in one call, against the local
// portal's seeded dialogues (tests/portal/README.md, "Seeded data").
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Client, sendToCrmItem, isBitrix24Error } from 'b24-openlines';
import { rejectionOf, usePortal } from './portal.mjs';

const ctx = usePortal();
beforeEach(async () => { await ctx.portal.admin('reset', {}); });

const deal = (id) => ({ crmEntityType: 'deal', crmEntity: id });
/** A webhook of `userId` (the seeded one is user 1's). */
const webhookOf = async (userId, scope) => (await ctx.portal.admin('webhooks', { userId, ...(scope ? { scope } : {}) })).webhook;
/** The REST methods the portal was asked, in order, since `from`. */
const methods = async (from = 0) => (await ctx.portal.requests()).slice(from).map((r) => r.method.toLowerCase());
const members = async (chatId) => (await ctx.portal.admin('chats')).find((c) => c.id === chatId).members;
const ledger = () => ctx.portal.messages();

/** Asserts that nothing was sent and why, with a stable code. */
function refused(e, code, ...words) {
  assert.ok(isBitrix24Error(e), String(e));
  assert.equal(e.code, code, e.message);
  assert.equal(e.outcome, 'notExecuted', e.message);
  for (const w of words) assert.ok(e.message.includes(w), `${JSON.stringify(w)} in ${e.message}`);
}

test('sends into the item\'s active chat as the webhook\'s own user, in two requests', async () => {
  const client = Client.fromWebhook(await webhookOf(12));
  const from = (await ctx.portal.requests()).length;
  const r = await client.sendToCrmItem({ ...deal(288), message: 'Your order has shipped' });
  assert.deepEqual(Object.keys(r).sort(), ['chatId', 'connectorId', 'connectorTitle', 'id', 'joined', 'userId']);
  assert.equal(r.chatId, 8773, 'the active chat, not the finished 8772');
  assert.equal(r.connectorId, 'telegrambot');
  assert.equal(r.userId, 12);
  assert.equal(r.joined, false);
  const last = (await ledger()).at(-1);
  assert.deepEqual([last.id, last.chatId, last.userId, last.message], [r.id, 8773, 12, 'Your order has shipped']);
  assert.deepEqual(await methods(from), ['imopenlines.crm.chat.get', 'imopenlines.crm.message.add']);
});

test('a sender who is not a member is added, then the message sent; leave takes it out again', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook); // user 1: not a member of 8773
  assert.ok(!(await members(8773)).includes(1));
  const from = (await ctx.portal.requests()).length;
  const r = await client.sendToCrmItem({ ...deal(288), message: 'joined' });
  assert.equal(r.joined, true);
  assert.equal(r.userId, 1);
  assert.ok((await members(8773)).includes(1), 'still a member without leave');
  assert.deepEqual(await methods(from), ['imopenlines.crm.chat.get', 'imopenlines.crm.message.add',
    'imopenlines.crm.chat.user.add', 'imopenlines.crm.message.add']);
  assert.equal((await ledger()).filter((m) => m.message === 'joined').length, 1, 'one message, not two');
  // Already a member now: no join the second time.
  assert.equal((await client.sendToCrmItem({ ...deal(288), message: 'again' })).joined, false);

  await ctx.portal.admin('reset', {});
  const left = await client.sendToCrmItem({ ...deal(288), message: 'and gone' }, { leave: true });
  assert.equal(left.joined, true);
  assert.equal(left.left, true);
  assert.ok(!(await members(8773)).includes(1), 'removed after sending');
  assert.equal((await ledger()).at(-1).message, 'and gone');
});

test('join: false says the sender is not a member, and sends nothing', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const e = await rejectionOf(client.sendToCrmItem({ ...deal(288), message: 'x' }, { join: false }));
  refused(e, 'NOT_A_MEMBER', 'user 1', 'chat 8773', 'join: true');
  assert.equal((await ledger()).length, 0);
  assert.ok(!(await members(8773)).includes(1));
});

test('a sender the portal will not add: CANNOT_JOIN with the portal\'s reason', async () => {
  // User 17 may read CRM items but has no open-line rights.
  const e = await rejectionOf(sendToCrmItem({ ...deal(288), message: 'x', userId: 17 }, { webhookUrl: ctx.portal.webhook }));
  refused(e, 'CANNOT_JOIN', 'user 17', 'chat 8773', 'deal 288');
  assert.equal((await ledger()).length, 0);
});

test('the newest of several active chats, or the one on connectorId', async () => {
  const client = Client.fromWebhook(await webhookOf(12));
  const newest = await client.sendToCrmItem({ ...deal(290), message: 'a' });
  assert.equal(newest.chatId, 8810);
  assert.match(newest.connectorId, /^whatsapp/);
  const telegram = await client.sendToCrmItem({ ...deal(290), message: 'b', connectorId: 'telegrambot' });
  assert.equal(telegram.chatId, 8811);
  assert.equal(telegram.connectorId, 'telegrambot');
  const e = await rejectionOf(client.sendToCrmItem({ ...deal(290), message: 'c', connectorId: 'vkgroup' }));
  refused(e, 'NO_CHAT_ON_CONNECTOR', 'deal 290', "'vkgroup'", `chat 8810 (${newest.connectorId})`, 'chat 8811 (telegrambot)');
  assert.deepEqual((await ledger()).map((m) => m.chatId), [8810, 8811]);
});

test('only finished or closing dialogues: NO_ACTIVE_CHAT lists them', async () => {
  const e = await rejectionOf(sendToCrmItem({ ...deal(291), message: 'x' }, { webhookUrl: ctx.portal.webhook }));
  refused(e, 'NO_ACTIVE_CHAT', 'deal 291', 'chat 8820', 'chat 8821', 'finished');
  assert.equal((await ledger()).length, 0);
});

test('a dialogue still in the queue: NO_ACTIVE_CHAT says an operator must take it', async () => {
  const from = (await ctx.portal.requests()).length;
  const e = await rejectionOf(sendToCrmItem({ ...deal(292), message: 'x' }, { webhookUrl: ctx.portal.webhook }));
  refused(e, 'NO_ACTIVE_CHAT', 'deal 292', 'chat 8830', 'queue', 'operator');
  assert.deepEqual(await methods(from), ['imopenlines.crm.chat.get', 'imopenlines.crm.chat.get']);
  const reads = (await ctx.portal.requests()).slice(from);
  assert.equal(reads[1].params?.ACTIVE_ONLY ?? 'N', 'N');
});

test('an item without any open-line chat: NO_CHAT', async () => {
  const e = await rejectionOf(sendToCrmItem({ ...deal(293), message: 'x' }, { webhookUrl: ctx.portal.webhook }));
  refused(e, 'NO_CHAT', 'deal 293', 'no open-line chat');
});

test('a chat on a disconnected connector is never chosen', async () => {
  const client = Client.fromWebhook(await webhookOf(12));
  const r = await client.sendToCrmItem({ ...deal(294), message: 'x' });
  assert.equal(r.chatId, 8841);
});

test('the dialogue finishing between the read and the send: the next active chat', async () => {
  const client = Client.fromWebhook(await webhookOf(12));
  await ctx.portal.faults([{ method: 'imopenlines.crm.chat.get', kind: 'session_after', chatId: 8810, status: 60 }]);
  const from = (await ctx.portal.requests()).length;
  const r = await client.sendToCrmItem({ ...deal(290), message: 'still there?' });
  assert.equal(r.chatId, 8811);
  assert.deepEqual(await methods(from), ['imopenlines.crm.chat.get', 'imopenlines.crm.message.add',
    'imopenlines.crm.chat.get', 'imopenlines.crm.message.add']);
  assert.deepEqual((await ledger()).map((m) => m.chatId), [8811]);
  // The caller's own chat is not replaced.
  await ctx.portal.admin('reset', {});
  await ctx.portal.admin('fixtures', { sessions: [{ chatId: 8810, status: 60 }] });
  const again = Client.fromWebhook(await webhookOf(12));
  const e = await rejectionOf(again.sendToCrmItem({ ...deal(290), chatId: 8810, message: 'x' }));
  assert.equal(e.code, 'CHAT_NOT_IN_CRM');
});

test('a token client sends as the current user, read once per client', async () => {
  const { accessToken } = await ctx.portal.admin('tokens', { userId: 12 });
  const client = Client.fromToken({ accessToken, clientEndpoint: ctx.portal.clientEndpoint });
  const from = (await ctx.portal.requests()).length;
  const a = await client.sendToCrmItem({ ...deal(288), message: 'one' });
  const b = await client.sendToCrmItem({ ...deal(288), message: 'two' });
  assert.equal(a.userId, 12);
  assert.equal(b.userId, 12);
  assert.equal((await methods(from)).filter((m) => m === 'user.current').length, 1);
  assert.deepEqual((await ledger()).map((m) => m.userId), [12, 12]);
});

test('userId and chatId given: one request, straight to the chat', async () => {
  const from = (await ctx.portal.requests()).length;
  const r = await sendToCrmItem({ ...deal(288), message: 'direct', userId: 12, chatId: 8773 }, { webhookUrl: ctx.portal.webhook });
  assert.deepEqual(r, { id: r.id, chatId: 8773, connectorId: null, userId: 12, joined: false });
  assert.deepEqual(await methods(from), ['imopenlines.crm.message.add']);
});

test('a missing scope fails the first read, and says the message was not sent', async () => {
  const hook = await webhookOf(12, ['crm']);
  const e = await rejectionOf(sendToCrmItem({ ...deal(288), message: 'x' }, { webhookUrl: hook }));
  assert.equal(e.code, 'insufficient_scope');
  assert.equal(e.outcome, 'notExecuted');
  assert.ok(e.message.includes('the message was not sent'), e.message);
});

test('invalid params are refused before any request, in the portal\'s words', async () => {
  const from = (await ctx.portal.requests()).length;
  const e = await rejectionOf(sendToCrmItem({ crmEntityType: 'deal', crmEntity: 288 }, { webhookUrl: ctx.portal.webhook }));
  assert.equal(e.code, 'ERROR_ARGUMENT');
  assert.equal(e.argument, 'MESSAGE');
  const c = await rejectionOf(sendToCrmItem({ ...deal(288), message: 'x', connectorId: 5 }, { webhookUrl: ctx.portal.webhook }));
  assert.equal(c.argument, 'CONNECTOR_ID');
  const o = await rejectionOf(sendToCrmItem({ ...deal(288), message: 'x' }, { webhookUrl: ctx.portal.webhook, join: 'yes' }));
  assert.equal(o.code, 'ERROR_ARGUMENT');
  assert.equal((await ctx.portal.requests()).length, from);
});

test('with verify, a lost answer is found in the chat: one message, verified', async () => {
  const client = Client.fromWebhook(await webhookOf(12));
  await ctx.portal.faults([{ method: 'imopenlines.crm.message.add', kind: 'drop_after_store' }]);
  const r = await client.sendToCrmItem({ ...deal(288), message: 'https://shop.example/track?id=1&x=2' }, { verify: true, settleMs: 50 });
  assert.equal(r.verified, true);
  assert.equal(r.chatId, 8773);
  const sent = (await ledger()).filter((m) => m.message.startsWith('https://shop.example'));
  assert.equal(sent.length, 1, 'not sent twice');
  assert.equal(sent[0].id, r.id);
});
