// Many calls at once as a caller meets them: batch (references, halt, more than 50
// commands, per-command errors), paging, the limiter against the portal's bucket,
// retries of limit refusals (never of unknown outcomes), and a mass send aborted in
// the middle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, isBitrix24Error } from 'b24-openlines';
import { seed, usePortal } from './portal.mjs';

const ctx = usePortal();

const counters = () => ctx.portal.admin('counters');
const delivered = async (prefix) => (await ctx.portal.messages()).filter((m) => m.message.startsWith(prefix));
const limitsOff = () => ctx.portal.admin('settings', { rateLimit: { enabled: false } });

test('batch: a later command uses an earlier result by reference', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const out = await client.batch({
    leads: ['crm.lead.list', { select: ['ID'] }],
    chats: ['imopenlines.crm.chat.get', { CRM_ENTITY_TYPE: 'lead', CRM_ENTITY: '$result[leads][0][ID]' }],
  });
  assert.equal(out.leads.ok, true);
  assert.equal(out.leads.result[0].ID, '101');
  assert.equal(typeof out.leads.total, 'number');
  assert.equal(out.chats.ok, true);
  assert.deepEqual(out.chats.result.map((c) => c.CHAT_ID), ['8801'], 'the chat of lead 101');
});

test('batch: per-command errors are Bitrix24Errors with the command\'s method; halt stops the rest', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const tag = `halt-${Date.now()}-`;
  const add = (text, chatId = 8773) => ['imopenlines.crm.message.add',
    { CRM_ENTITY_TYPE: 'deal', CRM_ENTITY: 288, USER_ID: 12, CHAT_ID: chatId, MESSAGE: tag + text }];
  const out = await client.batch([add('a'), add('b', 8772), add('c'), ['no.such.method']]);
  assert.equal(out.length, 4);
  assert.equal(out[0].ok, true);
  assert.equal(typeof out[0].result, 'number');
  const refused = out[1].error;
  assert.ok(isBitrix24Error(refused));
  assert.deepEqual([refused.code, refused.method, refused.outcome], ['CHAT_NOT_IN_CRM', 'imopenlines.crm.message.add', 'failed']);
  assert.equal(out[2].ok, true, 'without halt the rest still runs');
  assert.deepEqual([out[3].error.code, out[3].error.method, out[3].error.outcome], ['ERROR_METHOD_NOT_FOUND', 'no.such.method', 'notExecuted']);

  const halted = await client.batch([add('d'), add('e', 8772), add('f')], { halt: true });
  assert.equal(halted[0].ok, true);
  assert.equal(halted[1].error.code, 'CHAT_NOT_IN_CRM');
  assert.deepEqual([halted[2].error.code, halted[2].error.outcome, halted[2].error.retryable], ['HALTED', 'notExecuted', true]);
  const texts = (await delivered(tag)).map((m) => m.message.slice(tag.length)).sort();
  assert.deepEqual(texts, ['a', 'c', 'd'], 'exactly the commands reported ok were delivered');
});

test('batch: more than 50 commands go as several requests, results in order', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const before = (await counters()).byMethod.batch ?? 0;
  const out = await client.batch(Array.from({ length: 120 }, () => ['server.time']));
  assert.equal(out.length, 120);
  assert.ok(out.every((e) => e.ok && typeof e.result === 'string'));
  assert.equal((await counters()).byMethod.batch - before, 3, '50 + 50 + 20');
  const bad = await client.batch('not commands').then(() => null, (e) => e);
  assert.ok(isBitrix24Error(bad));
  assert.equal(bad.code, 'ERROR_ARGUMENT');
});

test('paging: callPage keeps total and next; list walks all 120 leads', async () => {
  const crmItems = Array.from({ length: 119 }, (_, i) => ({ type: 'lead', id: 1001 + i, title: `Lead ${1001 + i}` }));
  await ctx.portal.admin('fixtures', { crmItems });
  const client = Client.fromWebhook(ctx.portal.webhook);
  const page = await client.callPage('crm.lead.list', { select: ['ID', 'TITLE'] });
  assert.equal(page.result.length, 50);
  assert.equal(page.total, 120);
  assert.equal(page.next, 50);
  const last = await client.callPage('crm.lead.list', { start: 100 });
  assert.equal(last.result.length, 20);
  assert.equal(last.next, undefined);
  const ids = [];
  for await (const lead of client.list('crm.lead.list', { select: ['ID'] })) ids.push(lead.ID);
  assert.equal(ids.length, 120);
  assert.equal(new Set(ids).size, 120, 'no lead twice');
  assert.equal(ids[0], '101');
  const bad = await client.callPage('', 5).catch((e) => e);
  assert.ok(isBitrix24Error(bad));
  assert.deepEqual([bad.code, bad.method, bad.argument], ['ERROR_ARGUMENT', 'callPage', 'params']);
});

test('limiter: a burst goes at once, then the drain rate; the portal refuses nothing', async () => {
  // The portal's real bucket (50, 2 per second) on a clock running 5 times faster:
  // 10 requests per second of real time.
  await ctx.portal.admin('settings', { rateLimit: { enabled: true, burst: 50, drainPerSecond: 2 } });
  await ctx.portal.admin('clock', { scale: 5 });
  try {
    const events = [];
    const client = Client.fromWebhook(ctx.portal.webhook, { limits: { burst: 50, drainPerSecond: 10 }, onRequest: (e) => events.push(e) });
    const before = (await counters()).queryLimitExceeded.total;
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 80 }, () => client.call('server.time')));
    const elapsed = Date.now() - started;
    assert.equal(results.length, 80);
    // The limiter keeps one place spare for network jitter; on a busy machine a
    // stray refusal is still possible, and is retried unseen.
    assert.ok((await counters()).queryLimitExceeded.total - before <= 2, 'the portal refused (almost) nothing');
    // 49 at once (one place kept spare), 31 more at 10 per second: about 3.1 s.
    assert.ok(elapsed >= 2800, `paced: ${elapsed} ms`);
    const immediate = events.filter((e) => e.waitedMs === 0).length;
    assert.ok(immediate >= 45 && immediate <= 50, `the burst went without waiting (${immediate})`);
    assert.ok(events.filter((e) => e.status === 200).length === 80);
    assert.ok(events.every((e) => e.method === 'server.time'));
  } finally {
    await ctx.portal.admin('clock', { scale: 1 });
    await limitsOff();
  }
});

test('limiter: a portal already busy answers 503; the client adapts and the caller never sees it', async () => {
  await ctx.portal.admin('settings', { rateLimit: { enabled: true, burst: 20, drainPerSecond: 10 } });
  try {
    // Another app fills the portal's bucket.
    await Promise.all(Array.from({ length: 20 }, () => fetch(`${ctx.portal.webhook}server.time`)));
    const events = [];
    const client = Client.fromWebhook(ctx.portal.webhook, { limits: { burst: 20, drainPerSecond: 10 }, onRequest: (e) => events.push(e) });
    const before = (await counters()).queryLimitExceeded.total;
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => client.call('server.time')));
    assert.deepEqual(results.map((r) => r.status), Array(10).fill('fulfilled'));
    assert.ok((await counters()).queryLimitExceeded.total - before >= 1, 'the portal did refuse');
    const refused = events.filter((e) => e.code === 'QUERY_LIMIT_EXCEEDED');
    assert.ok(refused.length >= 1 && refused.every((e) => e.status === 503));
    assert.ok(events.some((e) => e.attempt > 1 && e.waitedMs > 0), 'retried after waiting');
  } finally {
    await limitsOff();
  }
});

test('retries: limit refusals are sent again; a lost answer never is', async () => {
  const events = [];
  const client = Client.fromWebhook(ctx.portal.webhook, { retry: { retries: 3, baseDelayMs: 20 }, onRequest: (e) => events.push(e) });
  const tag = `retry-${Date.now()}-`;
  await ctx.portal.faults([
    { method: 'imopenlines.crm.message.add', kind: 'query_limit_exceeded' },
    { method: 'imopenlines.crm.message.add', kind: 'operation_time_limit' },
  ]);
  const id = await client.crmMessageAdd({ ...seed, message: `${tag}limited` });
  assert.equal(typeof id, 'number');
  assert.deepEqual(events.map((e) => [e.status, e.attempt]), [[503, 1], [429, 2], [200, 3]]);
  for (const e of events) assert.deepEqual(Object.keys(e).sort().filter((k) => !['method', 'status', 'code', 'durationMs', 'attempt', 'waitedMs'].includes(k)), []);

  await ctx.portal.faults([{ method: 'imopenlines.crm.message.add', kind: 'drop_after_store' }]);
  const before = (await ctx.portal.requests()).length;
  const lost = await client.crmMessageAdd({ ...seed, message: `${tag}lost` }).then(() => null, (e) => e);
  assert.equal(lost.outcome, 'unknown');
  assert.equal((await ctx.portal.requests()).length - before, 1, 'sent once');
  assert.equal((await delivered(`${tag}lost`)).length, 1, 'delivered once, as the portal stored it');

  const bounded = Client.fromWebhook(ctx.portal.webhook, { retry: { retries: 2, baseDelayMs: 1 } });
  await ctx.portal.faults([{ method: 'server.time', kind: 'query_limit_exceeded', count: 3 }]);
  const e = await bounded.call('server.time').then(() => null, (err) => err);
  assert.deepEqual([e.code, e.outcome, e.retryable], ['QUERY_LIMIT_EXCEEDED', 'notExecuted', true], 'bounded count');
});

test('crmMessageAddMany: entries in order, invalid items not sent, progress after each batch', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const tag = `many-${Date.now()}-`;
  const items = Array.from({ length: 120 }, (_, i) => ({ ...seed, message: `${tag}${i}` }));
  items[7] = { ...seed, chatId: 8772, message: `${tag}7` }; // refused by the portal
  items[60] = { ...seed, message: '' }; // invalid: never sent
  const progress = [];
  const out = await client.crmMessageAddMany(items, { onProgress: (p) => progress.push(p) });
  assert.equal(out.length, 120);
  assert.equal(out.filter((e) => e.ok).length, 118);
  assert.deepEqual([out[7].error.code, out[7].error.outcome], ['CHAT_NOT_IN_CRM', 'failed']);
  assert.deepEqual([out[60].error.code, out[60].error.outcome, out[60].error.argument], ['ERROR_ARGUMENT', 'notExecuted', 'MESSAGE']);
  assert.equal(progress.length, 3, 'three batches of at most 50');
  assert.deepEqual(progress.at(-1), { done: 120, total: 120, delivered: 118, failed: 2, unknown: 0 });
  const ledger = await delivered(tag);
  assert.equal(ledger.length, 118);
  const ids = new Map(ledger.map((m) => [m.message, m.id]));
  out.forEach((e, i) => { if (e.ok) assert.equal(ids.get(`${tag}${i}`), e.id); });
});

test('crmMessageAddMany: aborting stops before the next batch; the rest is not sent', async () => {
  // A slow bucket: one batch per 200 ms after the first.
  const client = Client.fromWebhook(ctx.portal.webhook, { limits: { burst: 2, drainPerSecond: 5 } });
  const tag = `abort-${Date.now()}-`;
  const items = Array.from({ length: 400 }, (_, i) => ({ ...seed, message: `${tag}${i}` }));
  const controller = new AbortController();
  const out = await client.crmMessageAddMany(items, {
    signal: controller.signal,
    onProgress: (p) => { if (p.done >= 100) controller.abort(); },
  });
  assert.equal(out.length, 400);
  assert.equal(out.filter((e) => e.ok).length, 100);
  for (const e of out.slice(100)) {
    assert.equal(e.ok, false);
    assert.deepEqual([e.error.code, e.error.outcome], ['ABORTED', 'notExecuted']);
    assert.match(e.error.message, /nothing was sent/);
  }
  assert.equal((await delivered(tag)).length, 100, 'the ledger agrees');
});

test('options are checked: bad limits, retry or hooks are refused when the client is made', async () => {
  for (const options of [{ limits: { burst: 0 } }, { limits: 'huge' }, { retry: 3 }, { onRequest: 'log' }]) {
    const e = await Client.fromWebhook(ctx.portal.webhook, options).ready().then(() => null, (err) => err);
    assert.ok(isBitrix24Error(e), JSON.stringify(options));
    assert.equal(e.code, 'ERROR_ARGUMENT');
  }
  // A hook that throws or rejects does not break the call.
  const client = Client.fromWebhook(ctx.portal.webhook, { onRequest: async () => { throw new Error('hook'); } });
  assert.equal(typeof await client.call('server.time'), 'string');
  const thrower = Client.fromWebhook(ctx.portal.webhook, { onRequest: () => { throw new Error('hook'); } });
  assert.equal(typeof await thrower.call('server.time'), 'string');
});
