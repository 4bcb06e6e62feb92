// A fault soak: 2,400 messages through crmMessageAddMany and single crmMessageAdd
// calls against the portal with its real bucket on (on a clock 50 times faster) and
// every fault kind it offers injected at random (seeded), then reconciled with the
// portal's ledger by a unique text per message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'b24-openlines';
import { seed, usePortal } from './portal.mjs';

const ctx = usePortal();

const KINDS = ['delay', 'html', 'truncated', 'status500_before', 'status500_after', 'drop_after_store',
  'expired_token', 'message_add_error', 'query_limit_exceeded', 'operation_time_limit'];
const SCALE = 50;

test('fault soak: no duplicate, no silent delivery, every unknown flagged, no limit refusal surfaced', async () => {
  const { portal } = ctx;
  await portal.admin('settings', { rateLimit: { enabled: true, burst: 50, drainPerSecond: 2 } });
  await portal.admin('clock', { scale: SCALE });
  // Each kind takes a matching request with probability 2 %: about 18 % of requests
  // meet a fault. `count` is large so that they stay for the whole run.
  await portal.faults(KINDS.map((kind, i) => ({ kind, probability: 0.02, seed: 1000 + i, count: 100000, delayMs: kind === 'delay' ? 30 : 0 })));

  const client = Client.fromWebhook(portal.webhook, {
    limits: { burst: 50, drainPerSecond: 2 * SCALE },
    retry: { retries: 4, baseDelayMs: 10, maxDelayMs: 200 },
    timeoutMs: 10_000,
  });
  const tag = `soak-${Date.now()}-`;
  const text = (i) => `${tag}${i}`;
  const outcome = new Map(); // text -> { ok, id?, error? }

  // 2,000 through four mass sends, two at a time.
  const many = async (from, n) => {
    const items = Array.from({ length: n }, (_, k) => ({ ...seed, message: text(from + k) }));
    const out = await client.crmMessageAddMany(items);
    assert.equal(out.length, n, 'one entry per item');
    out.forEach((e, k) => outcome.set(text(from + k), e));
  };
  // 400 single calls, 20 at a time.
  const singles = async (from, n) => {
    for (let k = 0; k < n; k += 20) {
      await Promise.all(Array.from({ length: Math.min(20, n - k) }, async (_, j) => {
        const t = text(from + k + j);
        try {
          outcome.set(t, { ok: true, id: await client.crmMessageAdd({ ...seed, message: t }) });
        } catch (error) {
          outcome.set(t, { ok: false, error });
        }
      }));
    }
  };
  await Promise.all([
    (async () => { await many(0, 500); await many(500, 500); })(),
    (async () => { await many(1000, 500); await many(1500, 500); })(),
    singles(2000, 400),
  ]);
  await portal.admin('faults', undefined, 'DELETE');
  await portal.admin('clock', { scale: 1 });
  await portal.admin('settings', { rateLimit: { enabled: false } });

  const ledger = (await portal.messages()).filter((m) => m.message.startsWith(tag));
  const stored = new Map();
  for (const m of ledger) stored.set(m.message, [...(stored.get(m.message) ?? []), m.id]);
  const faults = await portal.admin('faults/log');
  const requests = (await portal.requests()).length;
  const counters = await portal.admin('counters');

  const c = { total: outcome.size, delivered: 0, notExecuted: 0, failed: 0, unknown: 0, unknownStored: 0,
    duplicates: 0, notExecutedButStored: 0, failedButStored: 0, deliveredButMissing: 0, wrongId: 0,
    storedUnflagged: 0, limitSurfaced: 0 };
  for (const [t, e] of outcome) {
    const ids = stored.get(t) ?? [];
    if (ids.length > 1) c.duplicates += 1;
    if (e.ok) {
      c.delivered += 1;
      if (ids.length === 0) c.deliveredButMissing += 1;
      else if (ids[0] !== e.id) c.wrongId += 1;
      continue;
    }
    const err = e.error;
    if (err.code === 'QUERY_LIMIT_EXCEEDED') c.limitSurfaced += 1;
    if (err.outcome === 'unknown') {
      c.unknown += 1;
      if (ids.length) c.unknownStored += 1;
      assert.match(err.message, /may have been delivered/);
    } else {
      c[err.outcome] += 1;
      if (ids.length) {
        if (err.outcome === 'notExecuted') c.notExecutedButStored += 1;
        else c.failedButStored += 1;
        c.storedUnflagged += 1;
      }
    }
  }
  const kindsSeen = new Set(faults.map((f) => f.kind));
  console.log(`soak: ${JSON.stringify(c)}; requests ${requests}, faults ${faults.length} (${(100 * faults.length / requests).toFixed(1)} %), ` +
    `kinds ${kindsSeen.size}, 503 sent by the portal ${counters.queryLimitExceeded.total}`);

  assert.equal(c.total, 2400);
  assert.ok(faults.length / requests >= 0.10, `at least 10 % of requests faulted (${faults.length}/${requests})`);
  assert.deepEqual([...kindsSeen].sort(), [...KINDS].sort(), 'every kind was injected');
  assert.equal(c.duplicates, 0, 'no message twice');
  assert.equal(c.notExecutedButStored, 0, 'nothing reported not executed was delivered');
  assert.equal(c.failedButStored, 0, 'nothing reported failed was delivered');
  assert.equal(c.deliveredButMissing, 0, 'everything reported delivered is in the ledger');
  assert.equal(c.wrongId, 0, 'with the id the portal gave it');
  assert.equal(c.storedUnflagged, 0, 'every delivery the caller was not told of is flagged unknown');
  assert.equal(c.limitSurfaced, 0, 'no QUERY_LIMIT_EXCEEDED reached the caller');
  assert.ok(c.delivered > 1500, `most messages went through (${c.delivered})`);
});
