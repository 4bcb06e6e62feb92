// OAuth tokens shared by many processes through a token store: one refresh per expiry
// across all of them, never a lost refresh token; and the same race without a store,
// which loses (the measure of what the store prevents). Then stores that fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Client, isBitrix24Error, memoryTokenStore } from 'b24-openlines';
import { rejectionOf, usePortal } from './portal.mjs';
import { serve, launchChromium } from './browser.mjs';

const ctx = usePortal();
const PROCESSES = 4;
const CALLS = 25;
const WAVES = 2;

/** A process of the app: a client on the file store (or, with `shared` false, its own
 * tokens in memory); each line "go" on stdin runs CALLS concurrent calls and prints how
 * many succeeded and the codes of the failures. */
const CHILD = `
import { createInterface } from 'node:readline';
import { Client } from 'b24-openlines';
import { fileTokenStore } from 'b24-openlines/node';
const [, , shared, file, endpoint, oauthUrl, clientId, clientSecret, accessToken, refreshToken] = process.argv;
const refresh = async (current) => {
  const response = await fetch(oauthUrl, { method: 'POST', body: new URLSearchParams({
    grant_type: 'refresh_token', client_id: clientId, client_secret: clientSecret, refresh_token: current?.refreshToken ?? '' }) });
  return JSON.parse(await response.text());
};
const client = shared === 'store'
  ? Client.fromToken({ clientEndpoint: endpoint, store: fileTokenStore(file), refresh })
  : Client.fromToken({ clientEndpoint: endpoint, accessToken, refreshToken, refresh });
for await (const line of createInterface({ input: process.stdin })) {
  if (line !== 'go') break;
  const results = await Promise.allSettled(Array.from({ length: ${CALLS} }, () =>
    client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }, { timeoutMs: 15000 })));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason.code);
  console.log(JSON.stringify({ ok: results.length - failed.length, failed }));
}
`;

async function race(store) {
  const { portal } = ctx;
  await portal.admin('reset', {});
  const dir = await mkdtemp(path.join(tmpdir(), 'b24-store-'));
  const script = new URL('../token-race.mjs', import.meta.url); // next to node_modules
  await writeFile(script, CHILD);
  const file = path.join(dir, 'tokens.json');
  const { accessToken, refreshToken } = await portal.admin('tokens', { userId: 1, ttlSeconds: 3600 });
  await writeFile(file, JSON.stringify({ accessToken, refreshToken }));
  const before = await portal.admin('counters');
  const children = Array.from({ length: PROCESSES }, () => {
    const child = spawn(process.execPath, [script.pathname, store ? 'store' : 'memory', file, portal.clientEndpoint,
      portal.oauthUrl, portal.clientId, portal.clientSecret, accessToken, refreshToken], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return { child, next: async () => JSON.parse((await lines.next()).value) };
  });
  const waves = [];
  for (let w = 0; w < WAVES; w++) {
    // The token expires: every process meets it at once.
    await portal.admin('tokens/expire', {});
    const exchangesBefore = (await portal.admin('counters')).refreshes;
    for (const c of children) c.child.stdin.write('go\n');
    const results = await Promise.all(children.map((c) => c.next()));
    const counters = await portal.admin('counters');
    waves.push({
      exchanges: counters.refreshes - exchangesBefore,
      ok: results.reduce((n, r) => n + r.ok, 0),
      failed: results.flatMap((r) => r.failed),
    });
  }
  for (const c of children) c.child.stdin.end();
  await Promise.all(children.map((c) => new Promise((r) => c.child.once('exit', r))));
  const after = await portal.admin('counters');
  return { waves, invalidGrant: after.refreshErrors - before.refreshErrors, file };
}

test(`${PROCESSES} processes x ${CALLS} calls, ${WAVES} expiries, one file store: one exchange per expiry, every call succeeds`, { timeout: 120_000 }, async () => {
  const { waves, invalidGrant, file } = await race(true);
  console.log(`# with a file store: ${JSON.stringify(waves)}, invalid_grant ${invalidGrant}`);
  for (const w of waves) {
    assert.equal(w.exchanges, 1, 'one token exchange for all processes');
    assert.equal(w.ok, PROCESSES * CALLS);
    assert.deepEqual(w.failed, []);
  }
  assert.equal(invalidGrant, 0);
  // The file holds the portal's current tokens: they work.
  const tokens = JSON.parse(await readFile(file, 'utf8'));
  const chats = await Client.fromToken({ clientEndpoint: ctx.portal.clientEndpoint, accessToken: tokens.accessToken })
    .crmChatGet({ crmEntityType: 'deal', crmEntity: 288 });
  assert.ok(Array.isArray(chats));
  assert.ok(tokens.refreshToken && tokens.expiresAt > Date.now());
});

test('the same race without a store loses: refused refreshes, failed calls (what the store prevents)', { timeout: 120_000 }, async () => {
  const { waves, invalidGrant } = await race(false);
  console.log(`# without a store: ${JSON.stringify(waves)}, invalid_grant ${invalidGrant}`);
  const failed = waves.flatMap((w) => w.failed);
  assert.ok(invalidGrant > 0, 'concurrent refreshes were refused');
  assert.ok(failed.length > 0 && failed.every((c) => c === 'expired_token'), JSON.stringify(failed));
});

test('stores that fail end each call with a Bitrix24Error within its bounds, and say no secret', async () => {
  const { portal } = ctx;
  const { accessToken, refreshToken } = await portal.admin('tokens', { userId: 1, ttlSeconds: 0 });
  const good = { accessToken, refreshToken, expiresAt: 1 };
  const refresh = async () => ({ access_token: 'never-used-token', refresh_token: 'never-used-refresh', expires_in: 3600 });
  const stores = {
    'get throws': { get() { throw new Error(`get broke with ${accessToken}`); }, set: async () => true, lock: (n, f) => f() },
    'lock never resolves': { get: async () => good, set: async () => true, lock: () => new Promise(() => {}) },
    'set fails': { get: async () => good, set: async () => { throw new Error('read-only'); }, lock: (n, f) => f() },
  };
  for (const [name, store] of Object.entries(stores)) {
    const client = Client.fromToken({ clientEndpoint: portal.clientEndpoint, store, refresh }, { refreshTimeoutMs: 500 });
    const started = Date.now();
    const e = await rejectionOf(client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }, { timeoutMs: 2000 }));
    assert.ok(isBitrix24Error(e), name);
    assert.ok(Date.now() - started < 2500, `${name}: within its bounds`);
    for (const text of [e.message, JSON.stringify(e)]) {
      assert.ok(!text.includes(accessToken) && !text.includes(refreshToken), `${name}: ${text}`);
    }
    assert.match(e.message, name === 'set fails' ? /could not save the new tokens/ : /token store/, name);
  }
});

// Playwright exits on Node 18 (the Node 18 run skips the browser tests).
const oldNode = Number(process.versions.node.split('.')[0]) < 20 && 'Playwright needs Node 20';

test('3 tabs of one origin with the localStorage store: one exchange per expiry', { timeout: 120_000, skip: oldNode }, async () => {
  const { portal } = ctx;
  await portal.admin('reset', {});
  const pkgDir = new URL('../node_modules/b24-openlines/', import.meta.url);
  // Each tab: a token client on webStorageTokenStore; its refresh asks the test (the
  // OAuth server is not the page's to call), which exchanges the token as a server would.
  const page = `<!doctype html><meta charset="utf-8"><script type="module">
    import { Client, webStorageTokenStore } from '/pkg/index.js';
    const endpoint = new URLSearchParams(location.search).get('endpoint');
    const client = Client.fromToken({ clientEndpoint: endpoint, store: webStorageTokenStore('b24-tokens'),
      refresh: (current) => window.exchange(current?.refreshToken ?? '') });
    window.calls = async (n) => {
      const results = await Promise.allSettled(Array.from({ length: n }, () => client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 })));
      return results.map((r) => r.status === 'fulfilled' ? 'ok' : r.reason.message);
    };
    window.ready = true;
  </script>`;
  const site = await serve({ '/pkg/': pkgDir, '/': page });
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const exchange = async (refreshToken) => {
      const response = await fetch(portal.oauthUrl, { method: 'POST', body: new URLSearchParams({
        grant_type: 'refresh_token', client_id: portal.clientId, client_secret: portal.clientSecret, refresh_token: refreshToken }) });
      return JSON.parse(await response.text());
    };
    await context.exposeFunction('exchange', exchange);
    const { accessToken, refreshToken } = await portal.admin('tokens', { userId: 1, ttlSeconds: 3600 });
    const tabs = [];
    for (let i = 0; i < 3; i++) {
      const tab = await context.newPage();
      await tab.goto(`${site.origin}/?endpoint=${encodeURIComponent(portal.clientEndpoint)}`);
      await tab.waitForFunction(() => window.ready === true);
      tabs.push(tab);
    }
    await tabs[0].evaluate((t) => localStorage.setItem('b24-tokens', JSON.stringify(t)), { accessToken, refreshToken });
    const waves = [];
    for (let w = 0; w < 2; w++) {
      await portal.admin('tokens/expire', {});
      const before = (await portal.admin('counters')).refreshes;
      const results = (await Promise.all(tabs.map((tab) => tab.evaluate((n) => window.calls(n), 10)))).flat();
      const failed = results.filter((r) => r !== 'ok');
      if (failed.length) console.log(`# failed in a tab: ${[...new Set(failed)].join(' | ')}`);
      waves.push({ exchanges: (await portal.admin('counters')).refreshes - before, ok: results.length - failed.length, results: results.length });
    }
    console.log(`# 3 tabs with the localStorage store: ${JSON.stringify(waves)}`);
    for (const w of waves) assert.deepEqual(w, { exchanges: 1, ok: 30, results: 30 });
    assert.equal((await portal.admin('counters')).refreshErrors, 0);
  } finally {
    await browser.close();
    site.close();
  }
});

test('a refused refresh quotes the OAuth server, says what to do, and keeps the stored tokens', async () => {
  const { portal } = ctx;
  const { accessToken, refreshToken } = await portal.admin('tokens', { userId: 1, ttlSeconds: 3600 });
  await portal.admin('tokens/expire', { accessToken });
  for (const [error, words] of [['invalid_client', /invalid_client \(Wrong client secret\); check the app's client_id and client_secret/],
    ['invalid_grant', /invalid_grant \(Invalid refresh token\); the refresh token is no longer valid: the app must be authorized again/]]) {
    const store = memoryTokenStore({ accessToken, refreshToken, expiresAt: Date.now() + 60_000 });
    const client = Client.fromToken({ clientEndpoint: portal.clientEndpoint, store,
      refresh: async () => ({ error, error_description: error === 'invalid_client' ? 'Wrong client secret' : 'Invalid refresh token' }) });
    const e = await rejectionOf(client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }));
    assert.equal(e.code, 'expired_token');
    assert.match(e.message, words);
    assert.ok(!e.message.includes(refreshToken) && !e.message.includes(accessToken), e.message);
    assert.deepEqual(await store.get(), { accessToken, refreshToken, expiresAt: (await store.get()).expiresAt }, 'nothing saved over the tokens');
  }
});
