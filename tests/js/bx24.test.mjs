// Inside a Bitrix24 iframe: auth from a loaded BX24.js. The BX24 object here has the
// shape and behaviour of the real one (init callback, getAuth() with an absolute
// expiry in ms that turns false once expired, refreshAuth(callback)), backed by the
// local portal's tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, crmMessageAdd, isBitrix24Error } from 'b24-openlines';
import { rejectionOf, seed, usePortal } from './portal.mjs';

const ctx = usePortal();

/** A BX24-shaped object whose token comes from the local portal. */
async function fakeBx24({ refreshDelayMs = 30, refreshNever = false, initNever = false } = {}) {
  const { portal } = ctx;
  const issue = async () => (await portal.admin('tokens', { userId: 1 })).accessToken;
  const state = { token: await issue(), expiresAt: Date.now() + 3600_000, refreshes: 0 };
  const domain = new URL(portal.url).host;
  const bx24 = {
    init(cb) { if (!initNever) setTimeout(cb, 5); },
    getAuth() {
      if (Date.now() >= state.expiresAt) return false;
      return { access_token: state.token, refresh_token: 'r', expires_in: state.expiresAt, domain, member_id: 'm' };
    },
    refreshAuth(cb) {
      state.refreshes += 1;
      if (refreshNever) return;
      setTimeout(async () => {
        state.token = await issue();
        state.expiresAt = Date.now() + 3600_000;
        cb(bx24.getAuth());
      }, refreshDelayMs);
    },
  };
  return { bx24, state };
}

test('fromBx24 waits for init and sends with the frame token', async () => {
  const { bx24, state } = await fakeBx24();
  const client = await Client.fromBx24(bx24, { protocol: 'http' });
  assert.equal(client.portal, ctx.portal.url);
  const id = await client.crmMessageAdd(seed);
  const entry = (await ctx.portal.messages()).find((m) => m.id === id);
  assert.equal(entry.auth, 'token');
  assert.equal(state.refreshes, 0);
});

test('many calls refused with expired_token share one BX24.refreshAuth and each is delivered once', async () => {
  const { bx24, state } = await fakeBx24({ refreshDelayMs: 80 });
  const client = await Client.fromBx24(bx24, { protocol: 'http' });
  // The portal expires the token while BX24 still believes it valid.
  await ctx.portal.admin('tokens/expire', { accessToken: state.token });
  const before = (await ctx.portal.messages()).length;
  const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => client.crmMessageAdd({ ...seed, message: `bx${i}` })));
  assert.equal(state.refreshes, 1, 'one refresh for all calls in flight');
  assert.equal(client.refreshes, 1);
  assert.equal(new Set(ids).size, 12);
  assert.equal((await ctx.portal.messages()).length, before + 12, 'each message delivered once');
});

test('a token BX24 reports as expired is refreshed before anything is sent', async () => {
  const { bx24, state } = await fakeBx24();
  const client = await Client.fromBx24(bx24, { protocol: 'http' });
  state.expiresAt = Date.now() - 1; // getAuth() now returns false
  const requestsBefore = (await ctx.portal.requests()).length;
  await Promise.all([client.crmMessageAdd(seed), client.crmMessageAdd(seed), client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 })]);
  assert.equal(state.refreshes, 1);
  const requests = (await ctx.portal.requests()).slice(requestsBefore);
  assert.equal(requests.length, 3, 'no request went out with the expired token');
  assert.ok(requests.every((r) => r.status === 200), JSON.stringify(requests));
});

test('a token BX24 refreshed by itself is picked up without another refresh', async () => {
  const { bx24, state } = await fakeBx24();
  const client = await Client.fromBx24(bx24, { protocol: 'http' });
  await client.crmMessageAdd(seed);
  const old = state.token;
  state.token = (await ctx.portal.admin('tokens', { userId: 1 })).accessToken;
  await ctx.portal.admin('tokens/expire', { accessToken: old });
  await client.crmMessageAdd(seed);
  assert.equal(state.refreshes, 0);
  assert.equal(client.refreshes, 0);
});

test('a refreshAuth that never answers, or an init that never comes, rejects in time', async () => {
  const { bx24, state } = await fakeBx24({ refreshNever: true });
  const client = await Client.fromBx24(bx24, { protocol: 'http', refreshTimeoutMs: 150 });
  await ctx.portal.admin('tokens/expire', { accessToken: state.token });
  const e = await rejectionOf(client.crmMessageAdd(seed));
  assert.ok(isBitrix24Error(e));
  assert.equal(e.code, 'expired_token');
  assert.match(e.message, /within 150 ms/);
  assert.ok(!e.message.includes(state.token));

  const { bx24: silent } = await fakeBx24({ initNever: true });
  const e2 = await rejectionOf(Client.fromBx24(silent, { initTimeoutMs: 100 }));
  assert.equal(e2.code, 'NO_AUTH');
  assert.match(e2.message, /BX24.init did not call back within 100 ms/);
  assert.equal((await rejectionOf(Client.fromBx24(undefined))).code, 'NO_AUTH');
  assert.equal((await rejectionOf(Client.fromBx24({ init: 1 }))).code, 'NO_AUTH');
});

test('crmMessageAdd with no auth option uses globalThis.BX24', async () => {
  const { bx24 } = await fakeBx24();
  globalThis.BX24 = bx24;
  try {
    const id = await crmMessageAdd(seed, { protocol: 'http' });
    assert.equal((await ctx.portal.messages()).find((m) => m.id === id)?.auth, 'token');
  } finally {
    delete globalThis.BX24;
  }
  assert.equal((await rejectionOf(crmMessageAdd(seed))).code, 'NO_AUTH', 'without BX24 there is no auth');
});
