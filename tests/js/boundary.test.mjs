// The promises the API makes at its edges: a call's timeoutMs and signal bound every
// wait (a pending token refresh, BX24.init), nothing is sent after them, every error
// says whether the call was executed, and no URL credential or plain-http secret
// leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, crmMessageAdd } from 'b24-openlines';
import { rejectionOf, seed, usePortal } from './portal.mjs';

const ctx = usePortal();
const endpoint = () => `${ctx.portal.url}/rest/`;
const newToken = async () => (await ctx.portal.admin('tokens', { userId: 1 })).accessToken;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sent = async () => (await ctx.portal.requests()).filter((r) => r.method === 'imopenlines.crm.message.add').length;

/** A token client whose token has expired and whose refresh takes `ms`. */
async function slowRefreshClient(ms) {
  const token = await newToken();
  const client = Client.fromToken({
    clientEndpoint: endpoint(),
    accessToken: token,
    refresh: async () => { await sleep(ms); return { accessToken: await newToken() }; },
  });
  await ctx.portal.admin('tokens/expire', { accessToken: token });
  return client;
}

test('timeoutMs bounds a call waiting for a token refresh; nothing is sent after it', async () => {
  const client = await slowRefreshClient(3000);
  const before = await sent();
  const t0 = performance.now();
  const e = await rejectionOf(client.crmMessageAdd(seed, { timeoutMs: 200 }));
  const took = performance.now() - t0;
  assert.equal(e.code, 'TIMEOUT');
  assert.equal(e.outcome, 'notExecuted', e.message);
  assert.equal(e.retryable, true, 'nothing ran: safe to send again');
  // A bound, not a benchmark: far before the refresh ends (the figure is printed).
  assert.ok(took < 2000, `rejected after ${took.toFixed(0)} ms, not when the refresh ended`);
  console.log(`# timeoutMs 200 during a 3000 ms refresh: rejected after ${took.toFixed(1)} ms`);
  await sleep(3100);
  assert.equal(await sent(), before + 1, 'only the first attempt (answered expired_token) was sent');
});

test('an AbortSignal bounds a call waiting for a token refresh', async () => {
  const client = await slowRefreshClient(3000);
  const before = await sent();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 150);
  const t0 = performance.now();
  const e = await rejectionOf(client.crmMessageAdd(seed, { signal: controller.signal }));
  const took = performance.now() - t0;
  assert.equal(e.code, 'ABORTED');
  assert.equal(e.outcome, 'notExecuted');
  assert.ok(took < 2000, `rejected after ${took.toFixed(0)} ms`);
  console.log(`# abort at 150 ms during a 3000 ms refresh: rejected after ${took.toFixed(1)} ms`);
  await sleep(3100);
  assert.equal(await sent(), before + 1);
});

test('a refresh that never settles is bounded by the call, not by refreshTimeoutMs', async () => {
  const token = await newToken();
  const client = Client.fromToken({
    clientEndpoint: endpoint(), accessToken: token, refresh: () => new Promise(() => {}),
  }, { refreshTimeoutMs: 60_000 });
  await ctx.portal.admin('tokens/expire', { accessToken: token });
  const t0 = performance.now();
  const e = await rejectionOf(client.crmMessageAdd(seed, { timeoutMs: 300 }));
  assert.equal(e.code, 'TIMEOUT');
  assert.ok(performance.now() - t0 < 5000, 'long before refreshTimeoutMs');
});

test('timeoutMs bounds the wait for BX24.init in the free crmMessageAdd', async () => {
  const before = await sent();
  const bx24 = { init() {}, getAuth: () => false, refreshAuth() {} };
  const t0 = performance.now();
  const e = await rejectionOf(crmMessageAdd(seed, { bx24, timeoutMs: 200, initTimeoutMs: 60_000 }));
  assert.equal(e.code, 'TIMEOUT');
  assert.equal(e.outcome, 'notExecuted');
  const took = performance.now() - t0;
  assert.ok(took < 5000, 'long before initTimeoutMs');
  console.log(`# timeoutMs 200 waiting for BX24.init: rejected after ${took.toFixed(1)} ms`);
  assert.equal(await sent(), before);
});

test('an error before anything was sent never says the message may have been delivered', async () => {
  const controller = new AbortController();
  controller.abort();
  const client = Client.fromWebhook(ctx.portal.webhook);
  for (const p of [
    client.crmMessageAdd(seed, { signal: controller.signal }),
    client.crmMessageAdd({ ...seed, chatId: 0 }),
    crmMessageAdd(seed, {}),
  ]) {
    const e = await rejectionOf(p);
    assert.equal(e.outcome, 'notExecuted', e.message);
    assert.doesNotMatch(e.message, /may have been delivered/);
  }
});

test('a portal refusal is "failed", a limit "notExecuted" and retryable', async () => {
  // Without automatic retries, the limit refusal reaches the caller as it came.
  const client = Client.fromWebhook(ctx.portal.webhook, { retry: false });
  const e = await rejectionOf(client.crmMessageAdd({ ...seed, chatId: 8772 }));
  assert.deepEqual([e.code, e.kind, e.outcome, e.retryable], ['CHAT_NOT_IN_CRM', 'rejected', 'failed', false]);
  await ctx.portal.faults([{ method: 'imopenlines.crm.message.add', kind: 'query_limit_exceeded' }]);
  const l = await rejectionOf(client.crmMessageAdd(seed));
  assert.deepEqual([l.code, l.kind, l.outcome, l.retryable], ['QUERY_LIMIT_EXCEEDED', 'rateLimited', 'notExecuted', true]);
});

test('a password in a URL is refused before sending and never echoed', async () => {
  const before = (await ctx.portal.requests()).length;
  const withUser = ctx.portal.webhook.replace('http://', 'http://bob:Passw0rd@');
  const calls = [
    () => crmMessageAdd(seed, { webhookUrl: withUser }),
    () => Client.fromWebhook(withUser).crmMessageAdd(seed),
    () => Client.fromToken({ clientEndpoint: endpoint().replace('http://', 'http://bob:Passw0rd@'), accessToken: 't' }).crmChatGet(seed),
    () => crmMessageAdd(seed, { accessToken: 't', domain: `bob:Passw0rd@${new URL(ctx.portal.url).host}` }),
  ];
  for (const call of calls) {
    const e = await rejectionOf(call());
    assert.equal(e.code, 'NO_AUTH');
    assert.equal(e.outcome, 'notExecuted');
    for (const text of [e.message, e.description, JSON.stringify(e), String(e), e.stack]) {
      assert.ok(!text.includes('Passw0rd') && !text.includes(ctx.portal.secret), text);
    }
  }
  assert.equal((await ctx.portal.requests()).length, before);
});

test('plain http is refused for any host but this machine unless allowInsecureHttp', async () => {
  const { port } = new URL(ctx.portal.url);
  // 127.1 is this machine, spelled so that only an explicit opt-in lets it through.
  const remote = ctx.portal.webhook.replace(/127\.0\.0\.1/, '127.1');
  assert.notEqual(remote, ctx.portal.webhook);
  const e = await rejectionOf(crmMessageAdd(seed, { webhookUrl: remote }));
  assert.equal(e.code, 'NO_AUTH');
  assert.match(e.message, /clear text/);
  assert.ok(!e.message.includes(ctx.portal.secret));
  assert.equal(typeof (await crmMessageAdd(seed, { webhookUrl: remote, allowInsecureHttp: true })), 'number');
  const t = await rejectionOf(Client.fromToken({ domain: `http://127.1:${port}`, accessToken: 't' }).crmChatGet(seed));
  assert.equal(t.code, 'NO_AUTH');
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
    const url = ctx.portal.webhook.replace(/127\.0\.0\.1:\d+/, host);
    assert.equal(typeof (await crmMessageAdd(seed, { webhookUrl: url })), 'number', host);
  }
});

test('a client is ready() early: a bad webhook rejects there, with the outcome', async () => {
  const e = await rejectionOf(Client.fromWebhook('https://p.example/rest/x/secretvalue9/').ready());
  assert.equal(e.code, 'NO_AUTH');
  assert.ok(!JSON.stringify(e).includes('secretvalue9'));
  const c = await Client.fromWebhook(ctx.portal.webhook).ready();
  assert.equal(c.portal, ctx.portal.url);
});
