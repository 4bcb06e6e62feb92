// Verified delivery: an unknown outcome is settled by reading the chat back
// (im.dialog.messages.get), and a message is sent again only after the chat showed it
// was not stored. Reconciled with the portal's ledger: never a duplicate, never a loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, crmMessageAdd } from 'b24-openlines';
import { rejectionOf, seed, usePortal } from './portal.mjs';
import { PROBES } from './probes.mjs';

const ctx = usePortal();
const M = 'imopenlines.crm.message.add';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ledgerTexts = async () => (await ctx.portal.messages()).map((m) => m.message);
const count = (texts, t) => texts.filter((x) => x === t).length;
/** The i-th soak text: a probe text as apps send them (at most 300 characters), made unique. */
const soakText = (i, tag) => `${Array.from(PROBES[i % PROBES.length]).slice(0, 300).join('')} soak ${i} ${tag}`;

test('a message whose answer was lost after it was stored is found in the chat, with its id', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook, { verify: true, settleMs: 300 });
  for (const kind of ['drop_after_store', 'status500_after', 'truncated']) {
    const text = `verify ${kind} ${Math.random()}`;
    await ctx.portal.faults([{ method: M, kind }]);
    const id = await client.crmMessageAdd({ ...seed, message: text });
    const ledger = await ctx.portal.messages();
    assert.equal(count(ledger.map((m) => m.message), text), 1, `${kind}: stored once`);
    assert.equal(ledger.find((m) => m.message === text).id, id, `${kind}: the id found in the chat`);
  }
});

test('a message that was not stored is sent once more, after the settle window', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const text = `verify resend ${Math.random()}`;
  await ctx.portal.faults([{ method: M, kind: 'status500_before' }]);
  const id = await client.crmMessageAdd({ ...seed, message: text }, { verify: true, settleMs: 200 });
  const ledger = await ctx.portal.messages();
  assert.equal(count(ledger.map((m) => m.message), text), 1);
  assert.equal(ledger.find((m) => m.message === text).id, id);
  const sends = (await ctx.portal.requests()).filter((r) => r.method === M.toLowerCase()).slice(-2);
  assert.deepEqual(sends.map((r) => r.status), [500, 200], 'the first refused, the second delivered');
});

test('a slow request that stores after the client gave up is found after the settle window, not resent', async () => {
  const text = `verify slow ${Math.random()}`;
  await ctx.portal.faults([{ method: M, kind: 'delay', delayMs: 700 }]);
  const id = await crmMessageAdd({ ...seed, message: text }, { webhookUrl: ctx.portal.webhook, timeoutMs: 200, verify: true, settleMs: 1500 });
  await sleep(200);
  const ledger = await ctx.portal.messages();
  assert.equal(count(ledger.map((m) => m.message), text), 1, 'delivered once');
  assert.equal(ledger.find((m) => m.message === text).id, id);
});

test('a settle window cut short by the caller leaves the outcome unknown, and nothing is resent', async () => {
  const text = `verify cut ${Math.random()}`;
  await ctx.portal.faults([{ method: M, kind: 'delay', delayMs: 900 }]);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 500);
  const client = Client.fromWebhook(ctx.portal.webhook, { timeoutMs: 200 });
  const e = await rejectionOf(client.crmMessageAdd({ ...seed, message: text }, { verify: true, settleMs: 5000, signal: controller.signal }));
  assert.equal(e.outcome, 'unknown', e.message);
  assert.equal(e.verified, undefined);
  await sleep(800);
  assert.equal(count(await ledgerTexts(), text), 1, 'the slow request stored it once; it was not resent');
});

test('without the im scope the watermark cannot be read: nothing is sent', async () => {
  const { accessToken } = await ctx.portal.admin('tokens', { userId: 1, scope: ['imopenlines', 'crm'] });
  const client = Client.fromToken({ clientEndpoint: `${ctx.portal.url}/rest/`, accessToken }, { verify: true });
  const text = `verify scope ${Math.random()}`;
  const e = await rejectionOf(client.crmMessageAdd({ ...seed, message: text }));
  assert.equal(e.code, 'insufficient_scope');
  assert.equal(e.method, 'im.dialog.messages.get');
  assert.equal(count(await ledgerTexts(), text), 0);
});

for (const historyText of ['parsed', 'stored']) test(`soak, history as ${historyText}: 1,000 verified messages with links, entities and emoji under every fault kind: 0 duplicates, 0 losses, 0 unknowns`, { timeout: 300_000 }, async () => {
  await ctx.portal.admin('settings', { historyText });
  // The portal's bucket is off here and limit refusals come only as injected faults:
  // no pacing and no automatic retries, so that verification alone is measured.
  const client = Client.fromWebhook(ctx.portal.webhook, { timeoutMs: 400, verify: true, settleMs: 800, limits: false, retry: false });
  const kinds = ['delay', 'html', 'truncated', 'status500_before', 'status500_after', 'drop_after_store',
    'expired_token', 'message_add_error', 'query_limit_exceeded', 'operation_time_limit'];
  await ctx.portal.faults(kinds.map((kind, i) => ({
    method: M, kind, count: 1_000_000, probability: 0.012, seed: 1000 + i,
    ...(kind === 'delay' ? { delayMs: 600 } : {}),
  })));
  const N = 1000;
  const tag = Math.random().toString(36).slice(2);
  const texts = Array.from({ length: N }, (_, i) => soakText(i, tag));
  const outcomes = new Array(N);
  let next = 0;
  // 8 senders at a time.
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < N) {
      const i = next++;
      try {
        outcomes[i] = { ok: true, id: await client.crmMessageAdd({ ...seed, message: texts[i] }) };
      } catch (e) {
        outcomes[i] = { ok: false, error: e };
      }
    }
  }));
  await ctx.portal.admin('faults', undefined, 'DELETE');
  await sleep(700);
  const ledger = await ctx.portal.messages();
  const byText = new Map();
  for (const m of ledger) byText.set(m.message, [...(byText.get(m.message) ?? []), m.id]);
  const tally = { delivered: 0, duplicates: 0, lost: 0, wrongId: 0, notExecutedButStored: 0, failedButStored: 0, unknown: 0, errors: {} };
  for (let i = 0; i < N; i++) {
    const ids = byText.get(texts[i]) ?? [];
    if (ids.length > 1) tally.duplicates++;
    const o = outcomes[i];
    if (o.ok) {
      tally.delivered++;
      if (ids.length === 0) tally.lost++;
      else if (ids[0] !== o.id) tally.wrongId++;
    } else {
      tally.errors[o.error.code] = (tally.errors[o.error.code] ?? 0) + 1;
      if (o.error.outcome === 'unknown') tally.unknown++;
      if (o.error.outcome === 'notExecuted' && ids.length) tally.notExecutedButStored++;
      if (o.error.outcome === 'failed' && ids.length) tally.failedButStored++;
    }
  }
  const faults = (await ctx.portal.requests()).filter((r) => r.fault).length;
  console.log(`# verified soak (${historyText} history): ${N} messages, ${faults} faults injected: ${JSON.stringify(tally)}`);
  assert.ok(faults >= N * 0.1, `at least 10% faults (${faults})`);
  assert.equal(tally.duplicates, 0);
  assert.equal(tally.lost, 0);
  assert.equal(tally.wrongId, 0);
  assert.equal(tally.notExecutedButStored, 0);
  assert.equal(tally.failedButStored, 0);
  assert.equal(tally.unknown, 0, 'every unknown outcome was settled by reading the chat');
});

test('a mass send with verify settles a batch whose answer was lost: found messages get their ids, absent ones are sent once more', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook, { limits: false, retry: false });
  const before = (await ctx.portal.messages()).length;
  const tag = Math.random().toString(36).slice(2);
  // 60 items, two of them with the same text: two batch requests.
  const items = Array.from({ length: 60 }, (_, i) => ({ ...seed, message: i === 7 || i === 8 ? `twin ${tag}` : `many ${tag} ${i}` }));
  // One chat: its watermark is one plain read. The first batch of messages stores them
  // and drops the connection; the second is refused before running.
  await ctx.portal.faults([{ method: 'batch', kind: 'drop_after_store' }, { method: 'batch', kind: 'status500_before' }]);
  const progress = [];
  const entries = await client.crmMessageAddMany(items, { verify: true, settleMs: 200, onProgress: (p) => progress.push(p) });
  assert.equal(entries.length, 60);
  assert.ok(entries.every((e) => e.ok), JSON.stringify(entries.find((e) => !e.ok)));
  assert.ok(entries.every((e) => e.verified), 'every outcome was established by reading the chat');
  const ledger = (await ctx.portal.messages()).slice(before);
  assert.equal(ledger.length, 60, 'each message stored exactly once');
  for (let i = 0; i < 60; i++) {
    assert.equal(ledger.find((m) => m.id === entries[i].id)?.message, items[i].message, `item ${i} has its own message's id`);
  }
  assert.notEqual(entries[7].id, entries[8].id, 'twin texts get distinct ids');
  assert.deepEqual(progress.at(-1), { done: 60, total: 60, delivered: 60, failed: 0, unknown: 0 });
});

for (const historyText of ['parsed', 'stored']) test(`soak, history as ${historyText}: 1,000 messages with links, entities and emoji through verified mass sends, lost and slow batches included: 0 duplicates, 0 losses, 0 unknowns`, { timeout: 300_000 }, async () => {
  await ctx.portal.admin('settings', { historyText });
  const client = Client.fromWebhook(ctx.portal.webhook, { limits: false, retry: false, timeoutMs: 500, verify: true, settleMs: 900 });
  const before = (await ctx.portal.messages()).length;
  const kinds = ['drop_after_store', 'status500_after', 'status500_before', 'truncated', 'html', 'delay'];
  await ctx.portal.faults(kinds.map((kind, i) => ({
    method: 'batch', kind, count: 1_000, probability: 0.06, seed: 2000 + i,
    // A slow batch: it runs after the client's timeout has passed.
    ...(kind === 'delay' ? { delayMs: 700 } : {}),
  })));
  const tag = Math.random().toString(36).slice(2);
  // 50 texts twice: twins in one send.
  const items = Array.from({ length: 1000 }, (_, i) => ({ ...seed, message: soakText(i % 950, tag) }));
  const entries = [];
  for (let i = 0; i < items.length; i += 500) {
    entries.push(...await client.crmMessageAddMany(items.slice(i, i + 500)));
  }
  await ctx.portal.admin('faults', undefined, 'DELETE');
  await sleep(800);
  const ledger = (await ctx.portal.messages()).slice(before);
  const faulted = (await ctx.portal.requests()).filter((r) => r.method === 'batch' && r.fault).length;
  const byId = new Map(ledger.map((m) => [m.id, m.message]));
  const tally = { delivered: 0, verified: 0, failed: 0, unknown: 0, wrongText: 0 };
  for (let i = 0; i < items.length; i++) {
    const e = entries[i];
    if (e.ok) {
      tally.delivered++;
      if (e.verified) tally.verified++;
      if (byId.get(e.id) !== items[i].message) tally.wrongText++;
    } else if (e.error.outcome === 'unknown') tally.unknown++;
    else tally.failed++;
  }
  const ids = entries.filter((e) => e.ok).map((e) => e.id);
  console.log(`# verified mass soak (${historyText} history): ${items.length} messages, ${faulted} of the batches faulted: ${JSON.stringify(tally)}, ledger ${ledger.length}`);
  assert.ok(faulted >= 4, `faults hit batches (${faulted})`);
  assert.equal(tally.unknown, 0);
  assert.equal(tally.wrongText, 0, 'every id is its own message');
  assert.equal(new Set(ids).size, ids.length, 'no id given twice');
  assert.equal(ledger.length, tally.delivered, 'every stored message is reported delivered, none twice (0 duplicates, 0 losses)');
});
