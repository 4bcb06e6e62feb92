// What a caller sees when the network or the portal fails: no hung Promise, no
// duplicate message, and a code that says whether a retry is safe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Client, crmMessageAdd, isBitrix24Error } from 'b24-openlines';
import { rejectionOf, seed, usePortal } from './portal.mjs';

const M = 'imopenlines.crm.message.add';
const ctx = usePortal((portal) => ({ client: Client.fromWebhook(ctx.portal.webhook) }));

const count = async () => (await ctx.portal.messages()).length;

test('a slow portal times out with TIMEOUT, says the message may have arrived, and is not resent', async () => {
  await ctx.portal.faults([{ method: M, kind: 'delay', delayMs: 1500 }]);
  const before = await count();
  const t0 = performance.now();
  const e = await rejectionOf(ctx.client.crmMessageAdd(seed, { timeoutMs: 200 }));
  assert.ok(isBitrix24Error(e));
  assert.equal(e.code, 'TIMEOUT');
  assert.equal(e.kind, 'timeout');
  assert.equal(e.retryable, false);
  assert.equal(e.outcome, 'unknown');
  assert.match(e.message, /may have been delivered/);
  assert.ok(performance.now() - t0 < 1400, 'rejected at the timeout, not when the portal answered');
  await new Promise((r) => setTimeout(r, 1600));
  assert.equal(await count(), before + 1, 'the portal did execute it once, and it was not sent again');
});

test('the client-wide timeout applies when a call gives none', async () => {
  await ctx.portal.faults([{ method: M, kind: 'delay', delayMs: 1000 }]);
  const quick = Client.fromWebhook(ctx.portal.webhook, { timeoutMs: 150 });
  assert.equal((await rejectionOf(quick.crmMessageAdd(seed))).code, 'TIMEOUT');
  await new Promise((r) => setTimeout(r, 1100));
});

test('a read that times out is retryable', async () => {
  await ctx.portal.faults([{ method: 'imopenlines.crm.chat.get', kind: 'delay', delayMs: 800 }]);
  const e = await rejectionOf(ctx.client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }, { timeoutMs: 100 }));
  assert.equal(e.code, 'TIMEOUT');
  assert.equal(e.retryable, true);
  assert.doesNotMatch(e.message, /delivered/);
  await new Promise((r) => setTimeout(r, 900));
});

test('an AbortSignal cancels a call in flight with ABORTED', async () => {
  await ctx.portal.faults([{ method: M, kind: 'delay', delayMs: 1000 }]);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('user navigated away')), 100);
  const e = await rejectionOf(ctx.client.crmMessageAdd(seed, { signal: controller.signal }));
  assert.equal(e.code, 'ABORTED');
  assert.equal(e.kind, 'aborted');
  assert.equal(e.retryable, false);
  await new Promise((r) => setTimeout(r, 1100));
});

test('an already aborted signal rejects without sending anything', async () => {
  const before = (await ctx.portal.requests()).length;
  const e = await rejectionOf(ctx.client.crmMessageAdd(seed, { signal: AbortSignal.abort('stop') }));
  assert.equal(e.code, 'ABORTED');
  assert.equal(e.outcome, 'notExecuted');
  assert.doesNotMatch(e.message, /may have been delivered/);
  assert.equal((await ctx.portal.requests()).length, before);
});

test('an unreachable portal is NETWORK_ERROR without the secret in any text', async () => {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  const webhook = `http://127.0.0.1:${port}/rest/1/unreachablesecret42/`;
  const e = await rejectionOf(crmMessageAdd(seed, { webhookUrl: webhook }));
  assert.equal(e.code, 'NETWORK_ERROR');
  assert.equal(e.status, 0);
  // A refused connection never reached the portal: nothing can have been delivered.
  assert.equal(e.outcome, 'notExecuted');
  assert.equal(e.retryable, true);
  assert.match(e.message, /nothing was sent/);
  for (const text of [e.message, e.stack, JSON.stringify(e), String(e), e.description]) {
    assert.ok(!text.includes('unreachablesecret42'), text);
  }
});

test('an HTML error page is BAD_RESPONSE with the status, never a crash', async () => {
  await ctx.portal.faults([{ method: M, kind: 'html' }]);
  const e = await rejectionOf(ctx.client.crmMessageAdd(seed));
  assert.equal(e.code, 'BAD_RESPONSE');
  assert.equal(e.status, 502);
  assert.match(e.message, /text\/html/);
});

test('a truncated body after delivery is BAD_RESPONSE, not retryable, delivered once', async () => {
  const before = await count();
  await ctx.portal.faults([{ method: M, kind: 'truncated' }]);
  const e = await rejectionOf(ctx.client.crmMessageAdd(seed));
  assert.equal(e.code, 'BAD_RESPONSE');
  assert.equal(e.retryable, false);
  assert.equal(e.outcome, 'unknown');
  assert.match(e.message, /may have been delivered/);
  assert.equal(await count(), before + 1);
});

test('a connection dropped after delivery is NETWORK_ERROR and the message is not sent twice', async () => {
  const before = await count();
  await ctx.portal.faults([{ method: M, kind: 'drop_after_store' }]);
  const e = await rejectionOf(ctx.client.crmMessageAdd(seed));
  assert.equal(e.code, 'NETWORK_ERROR');
  assert.equal(e.retryable, false);
  assert.equal(e.outcome, 'unknown');
  assert.match(e.message, /may have been delivered/);
  assert.equal(await count(), before + 1, 'delivered exactly once');
});

test('a 500 before execution keeps the portal code; a write is still not retryable', async () => {
  await ctx.portal.faults([{ method: M, kind: 'status500_before' }]);
  const e = await rejectionOf(ctx.client.crmMessageAdd(seed));
  assert.equal(e.code, 'INTERNAL_SERVER_ERROR');
  assert.equal(e.status, 500);
  assert.equal(e.retryable, false);
});

test('a 500 after delivery says the message may have been delivered, and it exists once', async () => {
  const before = await count();
  await ctx.portal.faults([{ method: M, kind: 'status500_after' }]);
  const e = await rejectionOf(ctx.client.crmMessageAdd(seed));
  assert.equal(e.code, 'INTERNAL_SERVER_ERROR');
  assert.equal(e.retryable, false);
  assert.equal(e.kind, 'serverError', 'not "rejected": the portal may have run it');
  assert.equal(e.outcome, 'unknown');
  assert.match(e.message, /may have been delivered/);
  assert.equal(await count(), before + 1);
});

test('unknown methods are ERROR_METHOD_NOT_FOUND with status 404', async () => {
  const e = await rejectionOf(ctx.client.call('imopenlines.crm.nothing'));
  assert.equal(e.code, 'ERROR_METHOD_NOT_FOUND');
  assert.equal(e.status, 404);
});

test('many calls at once all settle, each delivered once', async () => {
  const before = await count();
  const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => ctx.client.crmMessageAdd({ ...seed, message: `m${i}` })));
  assert.equal(new Set(ids).size, 40);
  assert.equal(await count(), before + 40);
});

test('free() while calls run lets them end (a repeat included), then the client rejects with NO_AUTH', async () => {
  const c = Client.fromWebhook(ctx.portal.webhook);
  await c.ready();
  await ctx.portal.faults([
    { method: M, kind: 'delay', delayMs: 300 },
    { method: 'imopenlines.crm.chat.get', kind: 'query_limit_exceeded' },
  ]);
  const slow = c.crmMessageAdd({ ...seed, message: 'freed while in flight' });
  const repeated = c.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 });
  await new Promise((r) => setTimeout(r, 50));
  c.free();
  assert.ok((await slow) > 0, 'the call in flight resolves with its id');
  assert.ok(Array.isArray(await repeated), 'the refused read is repeated after the wait and resolves');
  const e = await rejectionOf(c.crmMessageAdd(seed));
  assert.equal(e.code, 'NO_AUTH');
  assert.doesNotMatch(e.message, /pointer|borrowed|ownership/);
});
