// sendToCrmItems: 500 messages over 100 CRM items, in batches, reconciled with the
// portal's ledger by a unique text per message.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Client, isBitrix24Error } from 'b24-openlines';
import { usePortal } from './portal.mjs';

const ctx = usePortal();

const DEALS = 100;
const PER_DEAL = 5;
const FIRST_DEAL = 5000;
const chatOf = (deal) => 60000 + (deal - FIRST_DEAL);

/** 100 deals, each with one active dialogue; user 12 is a member of every other one.
 * Deals 5100 and 5101 have only a finished dialogue and no chat at all. */
beforeEach(async () => {
  await ctx.portal.admin('reset', {});
  const deals = Array.from({ length: DEALS }, (_, i) => FIRST_DEAL + i);
  await ctx.portal.admin('fixtures', {
    crmItems: [...deals, 5100, 5101].map((id) => ({ type: 'deal', id })),
    chats: [
      ...deals.map((deal, i) => ({
        id: chatOf(deal),
        members: i % 2 === 0 ? [12] : [16],
        openLine: { connectorId: 'telegrambot', connectorTitle: 'Telegram', status: 40, crm: { type: 'deal', id: deal } },
      })),
      { id: 69000, members: [12], openLine: { status: 60, crm: { type: 'deal', id: 5100 } } },
    ],
  });
});

const items = (tag) => Array.from({ length: DEALS * PER_DEAL }, (_, k) => ({
  crmEntityType: 'deal', crmEntity: FIRST_DEAL + (k % DEALS), message: `${tag}${k}`,
}));

/** Checks every entry against the ledger: no text stored twice; an ok entry is its one
 * stored message; a failed or not executed one stored nothing; an unknown one flagged. */
async function reconcile(tag, sent, out) {
  const stored = new Map();
  for (const m of await ctx.portal.messages()) {
    if (!m.message.startsWith(tag)) continue;
    assert.ok(!stored.has(m.message), `${m.message} stored twice`);
    stored.set(m.message, m);
  }
  const counts = { ok: 0, unknown: 0, other: 0 };
  sent.forEach((item, k) => {
    const e = out[k];
    const m = stored.get(item.message);
    if (e.ok) {
      counts.ok++;
      assert.ok(m, `${item.message} reported sent but not stored`);
      assert.equal(m.id, e.id);
      assert.equal(m.chatId, e.chatId);
    } else {
      assert.ok(isBitrix24Error(e.error));
      if (e.error.outcome === 'unknown') counts.unknown++;
      else {
        counts.other++;
        assert.equal(m, undefined, `${item.message}: ${e.error.outcome} but stored`);
      }
    }
  });
  return counts;
}

test('500 messages over 100 items: reads, joins and sends in batches, one entry per item in order', async () => {
  const client = Client.fromWebhook((await ctx.portal.admin('webhooks', { userId: 12 })).webhook);
  const tag = `items-${Date.now()}-`;
  const sent = [...items(tag), { crmEntityType: 'deal', crmEntity: 5100, message: `${tag}finished` },
    { crmEntityType: 'deal', crmEntity: 5101, message: `${tag}none` }, { crmEntityType: 'deal', message: `${tag}bad` }];
  const progress = [];
  const before = (await ctx.portal.requests()).length;
  const out = await client.sendToCrmItems(sent, { onProgress: (p) => progress.push(p) });
  assert.equal(out.length, sent.length);
  const counts = await reconcile(tag, sent, out);
  assert.deepEqual(counts, { ok: 500, unknown: 0, other: 3 });
  assert.deepEqual(out.slice(-3).map((e) => e.error.code), ['NO_ACTIVE_CHAT', 'NO_CHAT', 'ERROR_ARGUMENT']);
  assert.ok(out[1].joined && !out[0].joined, 'user 12 joined the chats it was not in');
  assert.equal(out[0].connectorId, 'telegrambot');
  const requests = (await ctx.portal.requests()).slice(before);
  assert.ok(requests.every((r) => r.method === 'batch'), 'everything went in batches');
  assert.ok(out.slice(0, 500).every((e, k) => e.chatId === chatOf(sent[k].crmEntity)));
  // 102 CRM items read in 3 requests, the two without an active chat explained in 1,
  // 100 joins in 2, the 500 messages in 10.
  assert.equal(requests.length, 3 + 1 + 2 + 10, `${requests.length} requests`);
  assert.equal(progress.at(-1).done, sent.length);
  assert.equal(progress.at(-1).delivered, 500);
});

test('with faults on the sends: no duplicate, every unknown flagged; with verify, none unknown', async () => {
  // The portal's rate limit is off here: so is the client's pacing (the messages that a
  // verified mass send proves absent are sent again one by one, three requests each).
  const client = Client.fromWebhook((await ctx.portal.admin('webhooks', { userId: 12 })).webhook,
    { timeoutMs: 5000, limits: { burst: 10000, drainPerSecond: 10000 } });
  const M = 'imopenlines.crm.message.add';
  const faults = (seed) => ['drop_after_store', 'status500_after', 'status500_before', 'html', 'truncated']
    .map((kind, i) => ({ method: M, kind, probability: 0.15, seed: seed + i, count: 1000 }));

  await ctx.portal.faults(faults(100));
  const tag = `faulty-${Date.now()}-`;
  const sent = items(tag);
  const out = await client.sendToCrmItems(sent);
  const plain = await reconcile(tag, sent, out);
  assert.ok(plain.unknown > 0, `the faults left some unknown: ${JSON.stringify(plain)}`);
  await ctx.portal.admin('faults', undefined, 'DELETE');

  await ctx.portal.faults(faults(200));
  const vtag = `verified-${Date.now()}-`;
  const vsent = items(vtag);
  const vout = await client.sendToCrmItems(vsent, { verify: true, settleMs: 100 });
  const verified = await reconcile(vtag, vsent, vout);
  await ctx.portal.admin('faults', undefined, 'DELETE');
  assert.equal(verified.unknown, 0, JSON.stringify(verified));
  assert.equal(verified.ok + verified.other, 500);
  assert.ok(vout.some((e) => e.ok && e.verified), 'some established by reading the chat');
});

test('a dialogue that ends between the reads and the sends: those messages go to the item\'s next active chat', async () => {
  // Deal 5000 gets a second, older active chat; its first one finishes after the reads.
  await ctx.portal.admin('fixtures', {
    chats: [{ id: 69001, members: [12], openLine: { connectorId: 'livechat', status: 40, crm: { type: 'deal', id: 5000 } } }],
    sessions: [{ chatId: chatOf(5000), status: 40 }],
  });
  await ctx.portal.faults([{ method: 'imopenlines.crm.chat.user.add', kind: 'session_after', chatId: chatOf(5000), status: 60 }]);
  const client = Client.fromWebhook((await ctx.portal.admin('webhooks', { userId: 12 })).webhook);
  const tag = `moved-${Date.now()}-`;
  const sent = [0, 1, 2].map((k) => ({ crmEntityType: 'deal', crmEntity: 5000 + k, message: `${tag}${k}` }));
  const progress = [];
  const out = await client.sendToCrmItems(sent, { onProgress: (p) => progress.push(p) });
  assert.deepEqual(out.map((e) => e.chatId), [69001, chatOf(5001), chatOf(5002)]);
  assert.deepEqual(await reconcile(tag, sent, out), { ok: 3, unknown: 0, other: 0 });
  assert.deepEqual(progress.at(-1), { done: 3, total: 3, delivered: 3, failed: 0, unknown: 0 });
});
