// Mass-send benchmark: 10,000 messages through crmMessageAddMany against the local
// portal with its real bucket (50 requests, 2 per second) on a clock running SCALE
// times faster. Prints the wall time against the bucket's theoretical minimum for
// that many requests (the burst at once, the rest at the drain rate; goal <= 1.05x)
// and the number of 503s the portal sent. Then the cost of verified delivery
// (`verify: true`) on texts with links, which a current portal's history shows
// changed: the same send with verification (the watermark read), one whose first
// batch's answer is lost after it stored its messages (found by reading), and one whose
// first batch failed before running (proven absent, sent again), in requests and time.
// Last, sendToCrmItems for 500 messages over 100 CRM items, in requests, against one
// sendToCrmItem per message.
//
//   node scripts/mass-bench.mjs [messages=10000] [scale=20]
//
// Needs the built package (pkg/) and the portal binary (target/debug/b24-portal, or
// B24_PORTAL_BIN).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { Client } = await import(path.join(root, 'pkg', 'inline.js'));
const messages = Number(process.argv[2] ?? 10_000);
const scale = Number(process.argv[3] ?? 20);
const BURST = 50;
const DRAIN = 2;

const bin = process.env.B24_PORTAL_BIN ?? path.join(root, 'target', 'debug', 'b24-portal');
const child = spawn(bin, ['--port', '0', '--rate-limit', '--rate-burst', String(BURST), '--rate-drain', String(DRAIN),
  '--time-scale', String(scale)], { stdio: ['ignore', 'pipe', 'inherit'] });
const info = JSON.parse(await new Promise((resolve) => createInterface({ input: child.stdout }).once('line', resolve)));
const admin = async (p) => (await fetch(`${info.url}/_portal/${p}`)).json();

try {
  const client = Client.fromWebhook(info.webhook, { limits: { burst: BURST, drainPerSecond: DRAIN * scale } });
  const items = Array.from({ length: messages }, (_, i) => ({
    crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: `bench ${i}`,
  }));
  const requests = Math.ceil(messages / 50);
  const started = performance.now();
  const out = await client.crmMessageAddMany(items);
  const wall = performance.now() - started;
  const minimum = (Math.max(0, requests - BURST) / (DRAIN * scale)) * 1000;
  const counters = await admin('counters');
  const ok = out.filter((e) => e.ok).length;
  console.log(`messages ${messages} in ${requests} batch requests; delivered ${ok}`);
  console.log(`bucket ${BURST} / ${DRAIN} per second, clock x${scale}: theoretical minimum ${(minimum / 1000).toFixed(2)} s (${(minimum * scale / 1000).toFixed(1)} s of portal time)`);
  console.log(`wall ${(wall / 1000).toFixed(2)} s = ${(wall / minimum).toFixed(3)}x the minimum (goal <= 1.05x)`);
  console.log(`503 QUERY_LIMIT_EXCEEDED sent by the portal: ${counters.queryLimitExceeded.total}`);

  // Verified delivery: what it costs, on a small send so the bucket is not the bound.
  const post = (p, body) => fetch(`${info.url}/_portal/${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  // A new client for each run: the portal's reset gives message ids out again, which a
  // real portal never does, and a client knows the ids it was answered with.
  const verified = () => Client.fromWebhook(info.webhook, { limits: false, verify: true, settleMs: 500 });
  const plain = () => Client.fromWebhook(info.webhook, { limits: false });
  const small = items.slice(0, 500).map((item, i) => ({ ...item, message: `bench ${i} https://shop.example.com/o/${i}?s=1&amp;t=2` }));
  const measure = async (client, faults) => {
    await post('reset', {});
    if (faults) await post('faults', { faults });
    const t0 = performance.now();
    const entries = await client().crmMessageAddMany(small);
    const ms = performance.now() - t0;
    const stored = (await admin('messages')).length;
    return { ms, requests: (await admin('counters')).total, delivered: entries.filter((e) => e.ok).length, duplicates: stored - new Set((await admin('messages')).map((m) => m.message)).size };
  };
  const base = await measure(plain);
  const checked = await measure(verified);
  const lost = await measure(verified, [{ method: 'batch', kind: 'drop_after_store' }]);
  const absent = await measure(verified, [{ method: 'batch', kind: 'status500_before' }]);
  console.log(`verify, ${small.length} messages to one chat, fault-free: ${checked.requests} requests vs ${base.requests} (+${checked.requests - base.requests}: the watermark read), ${checked.ms.toFixed(0)} ms vs ${base.ms.toFixed(0)} ms`);
  console.log(`verify, first batch's answer lost after storing (50 unknown items): ${lost.requests} requests (+${lost.requests - checked.requests} to settle them), ${lost.ms.toFixed(0)} ms (+${(lost.ms - checked.ms).toFixed(0)}); delivered ${lost.delivered} of ${small.length}, ${lost.duplicates} duplicates`);
  console.log(`verify, first batch failed before running (50 unknown items, proven absent): ${absent.requests} requests (+${absent.requests - checked.requests} to settle and resend them), ${absent.ms.toFixed(0)} ms (+${(absent.ms - checked.ms).toFixed(0)}); delivered ${absent.delivered} of ${small.length}, ${absent.duplicates} duplicates`);

  // Messages to CRM items: 500 over 100 deals (each with one active chat, the sender a
  // member of every other one), in requests, against one sendToCrmItem per message.
  await post('reset', {});
  const deals = Array.from({ length: 100 }, (_, i) => 5000 + i);
  await post('fixtures', {
    crmItems: deals.map((id) => ({ type: 'deal', id })),
    chats: deals.map((id, i) => ({ id: 60000 + i, members: i % 2 === 0 ? [1] : [16], openLine: { status: 40, crm: { type: 'deal', id } } })),
  });
  const toItems = Array.from({ length: 500 }, (_, k) => ({ crmEntityType: 'deal', crmEntity: deals[k % 100], message: `item ${k}` }));
  const count = async (f) => {
    const before = (await admin('counters')).total;
    const t0 = performance.now();
    const out = await f();
    return { requests: (await admin('counters')).total - before, ms: performance.now() - t0, ok: out.filter((e) => e.ok !== false).length };
  };
  const many = await count(() => plain().sendToCrmItems(toItems));
  const one = plain();
  const singles = await count(async () => {
    const out = [];
    for (const item of toItems) out.push(await one.sendToCrmItem({ ...item, message: `${item.message} single` }).catch((error) => ({ ok: false, error })));
    return out;
  });
  console.log(`sendToCrmItems, 500 messages over 100 CRM items: ${many.requests} requests (${many.ok} sent, ${many.ms.toFixed(0)} ms); one sendToCrmItem each: ${singles.requests} requests (${singles.ok} sent, ${singles.ms.toFixed(0)} ms) = ${(singles.requests / many.requests).toFixed(1)}x`);
} finally {
  child.kill('SIGTERM');
}
