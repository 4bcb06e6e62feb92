// Token auth, refresh shared by all calls in flight, and secrets kept out of every error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, crmMessageAdd, isBitrix24Error } from 'b24-openlines';
import { rejectionOf, seed, usePortal } from './portal.mjs';

const ctx = usePortal();

const endpoint = () => `${ctx.portal.url}/rest/`;
const newToken = async () => (await ctx.portal.admin('tokens', { userId: 1 })).accessToken;

test('an access token is sent as auth and works with domain or clientEndpoint', async () => {
  const id = await crmMessageAdd(seed, { accessToken: ctx.portal.accessToken, clientEndpoint: endpoint() });
  assert.equal(typeof id, 'number');
  const host = new URL(ctx.portal.url).host;
  const client = Client.fromToken({ domain: `http://${host}`, accessToken: await newToken() });
  assert.equal(typeof (await client.crmMessageAdd(seed)), 'number');
  const last = (await ctx.portal.requests()).at(-1);
  assert.equal(last.auth ?? last.authKind ?? 'token', 'token');
});

test('an expired token is refreshed once for all calls in flight, each delivered once', async () => {
  const token = await newToken();
  let refreshes = 0;
  const client = Client.fromToken({
    clientEndpoint: endpoint(),
    accessToken: token,
    refresh: async () => {
      refreshes += 1;
      await new Promise((r) => setTimeout(r, 50));
      return { accessToken: await newToken() };
    },
  });
  await ctx.portal.admin('tokens/expire', { accessToken: token });
  const before = (await ctx.portal.messages()).length;
  const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => client.crmMessageAdd({ ...seed, message: `r${i}` })));
  assert.equal(refreshes, 1, 'one refresh for ten calls');
  assert.equal(client.refreshes, 1);
  assert.equal(new Set(ids).size, 10);
  const ledger = await ctx.portal.messages();
  assert.equal(ledger.length, before + 10, 'every message delivered exactly once');
  // And the new token keeps working without another refresh.
  await client.crmMessageAdd(seed);
  assert.equal(refreshes, 1);
});

test('a refresh function may return the raw OAuth answer or a plain string', async () => {
  for (const shape of [(t) => ({ access_token: t, refresh_token: 'r' }), (t) => t]) {
    const token = await newToken();
    const client = Client.fromToken({ clientEndpoint: endpoint(), accessToken: token, refresh: async () => shape(await newToken()) });
    await ctx.portal.admin('tokens/expire', { accessToken: token });
    assert.equal(typeof (await client.crmMessageAdd(seed)), 'number');
  }
});

test('without refresh, expired_token is an auth error; a failing refresh keeps that code', async () => {
  const token = await newToken();
  await ctx.portal.admin('tokens/expire', { accessToken: token });
  const e = await rejectionOf(Client.fromToken({ clientEndpoint: endpoint(), accessToken: token }).crmMessageAdd(seed));
  assert.equal(e.code, 'expired_token');
  assert.equal(e.status, 401);
  assert.equal(e.kind, 'auth');

  const failing = Client.fromToken({
    clientEndpoint: endpoint(),
    accessToken: token,
    refresh: () => { throw new Error(`refresh server down, token ${token}`); },
  });
  const e2 = await rejectionOf(failing.crmMessageAdd(seed));
  assert.equal(e2.code, 'expired_token');
  assert.match(e2.message, /refreshing the access token failed/);
  assert.ok(!e2.message.includes(token), 'the token is redacted even from the refresh error');

  const hanging = Client.fromToken(
    { clientEndpoint: endpoint(), accessToken: token, refresh: () => new Promise(() => {}) },
    { refreshTimeoutMs: 100 },
  );
  const e3 = await rejectionOf(hanging.crmMessageAdd(seed));
  assert.equal(e3.code, 'expired_token');
  assert.match(e3.message, /did not settle within 100 ms/);
});

test('unknown tokens and wrong webhook secrets are 401 auth errors', async () => {
  const e = await rejectionOf(crmMessageAdd(seed, { accessToken: 'not-a-token', clientEndpoint: endpoint() }));
  assert.equal(e.code, 'invalid_token');
  assert.equal(e.status, 401);
  const wrong = ctx.portal.webhook.replace(ctx.portal.secret, 'wrongsecret');
  const e2 = await rejectionOf(crmMessageAdd(seed, { webhookUrl: wrong }));
  assert.equal(e2.code, 'INVALID_CREDENTIALS');
  assert.equal(e2.status, 401);
  assert.equal(e2.kind, 'auth');
});

test('no webhook secret or token appears in any error, stack or serialization', async () => {
  const token = await newToken();
  const secrets = [ctx.portal.secret, token, 'refresh-secret-xyz'];
  await ctx.portal.faults([
    { kind: 'html' }, { kind: 'truncated' }, { kind: 'status500_before' }, { kind: 'delay', delayMs: 500 },
  ]);
  const hook = Client.fromWebhook(ctx.portal.webhook);
  const tok = Client.fromToken({ clientEndpoint: endpoint(), accessToken: token });
  const errors = [];
  for (const call of [
    () => hook.crmMessageAdd(seed),
    () => hook.crmMessageAdd(seed),
    () => hook.crmMessageAdd(seed),
    () => tok.crmMessageAdd(seed, { timeoutMs: 100 }),
    () => hook.crmMessageAdd({ ...seed, chatId: 8772 }),
    () => tok.crmMessageAdd({ ...seed, userId: 14 }),
    () => tok.call('imopenlines.crm.message.add', { CRM_ENTITY_TYPE: 'deal' }),
    () => crmMessageAdd(seed, { webhookUrl: ctx.portal.webhook.replace(/rest\/1\//, 'rest/x/') }),
    () => crmMessageAdd(seed, { webhookUrl: `${ctx.portal.webhook}?q=${token}` }),
    () => crmMessageAdd(seed, { accessToken: token, domain: `bad/${token}` }),
    () => crmMessageAdd({}, { webhookUrl: ctx.portal.webhook }),
  ]) {
    errors.push(await rejectionOf(call()));
  }
  errors.push(await rejectionOf(Client.fromWebhook(`${ctx.portal.webhook}?x`).ready()));
  assert.ok(errors.length >= 12);
  for (const e of errors) {
    assert.ok(isBitrix24Error(e), String(e));
    const texts = [e.message, e.stack, JSON.stringify(e), String(e), e.description, ...Object.values(e).map(String)];
    for (const text of texts) for (const s of secrets) assert.ok(!String(text).includes(s), `${e.code} leaks: ${text}`);
  }
  const log = JSON.stringify(await ctx.portal.requests());
  for (const s of secrets) assert.ok(!log.includes(s), 'the portal request log is redacted too');
  await new Promise((r) => setTimeout(r, 500));
});
