// The installed package in headless Chromium, as a plain <script type="module"> and as
// a Vite bundle, each served from another origin than the portal (as a Bitrix24 app
// is): the entry loads its .wasm by itself and the cross-origin call passes the
// portal's CORS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { usePortal } from './portal.mjs';
import { serve, resultOfPage, pageScript } from './browser.mjs';

const pkgDir = new URL('../node_modules/b24-openlines/', import.meta.url);
const ctx = usePortal();

async function assertDelivered({ result, logs }) {
  assert.equal(typeof result.id, 'number', logs.join('\n'));
  assert.deepEqual(result.error, { guard: true, isError: true, code: 'CHAT_NOT_IN_CRM', status: 400 });
  const entry = (await ctx.portal.messages()).find((m) => m.id === result.id);
  assert.equal(entry?.message, 'from a browser');
}

test('a plain <script type="module"> imports the package and sends the message', async () => {
  const page = `<!doctype html><meta charset="utf-8"><script type="module">${pageScript('/pkg/index.js')}</script>`;
  const site = await serve({ '/pkg/': pkgDir, '/': page });
  try {
    await assertDelivered(await resultOfPage(`${site.origin}/?webhook=${encodeURIComponent(ctx.portal.webhook)}`));
  } finally {
    site.close();
  }
});

test('a Vite production bundle of an app importing the package sends the message', async () => {
  const app = new URL('../vite-app/', import.meta.url);
  await rm(app, { recursive: true, force: true });
  await mkdir(app, { recursive: true });
  await writeFile(new URL('index.html', app), '<!doctype html><meta charset="utf-8"><script type="module" src="./main.js"></script>');
  await writeFile(new URL('main.js', app), pageScript('b24-openlines'));
  const require = createRequire(`${process.env.B24_REPO_ROOT}/package.json`);
  const viteDir = dirname(require.resolve('vite/package.json'));
  const { build } = await import(pathToFileURL(join(viteDir, 'dist/node/index.js')).href);
  await build({ root: app.pathname, logLevel: 'warn', build: { outDir: 'dist', emptyOutDir: true } });
  const site = await serve({ '/': new URL('dist/', app) });
  try {
    await assertDelivered(await resultOfPage(`${site.origin}/?webhook=${encodeURIComponent(ctx.portal.webhook)}`));
  } finally {
    site.close();
  }
});

test('a cross-origin app pays one request per call: no CORS preflight, even with calls spaced past the preflight cache', async () => {
  const before = (await ctx.portal.admin('counters')).preflights;
  const requestsBefore = (await ctx.portal.requests()).length;
  // Three calls 5.5 s apart: a preflight, had there been one, would be cached 5 s at most.
  const page = `<!doctype html><meta charset="utf-8"><script type="module">
    import { Client } from '/pkg/index.js';
    const client = Client.fromWebhook(new URLSearchParams(location.search).get('webhook'));
    const seed = { crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773 };
    window.result = (async () => {
      const ids = [];
      for (let i = 0; i < 3; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 5500));
        ids.push(await client.crmMessageAdd({ ...seed, message: 'spaced ' + i + ' & [B]bold[/B]' }));
      }
      ids.push(await client.call('crm.lead.list', { select: ['ID', 'TITLE'], filter: { '>ID': 0 }, order: { ID: 'ASC' } }).then((r) => r.length));
      return ids;
    })();
  </script>`;
  const site = await serve({ '/pkg/': pkgDir, '/': page });
  try {
    const { result, logs } = await resultOfPage(`${site.origin}/?webhook=${encodeURIComponent(ctx.portal.webhook)}`);
    assert.equal(result.length, 4, logs.join('\n'));
    const ledger = await ctx.portal.messages();
    for (let i = 0; i < 3; i++) {
      assert.equal(ledger.find((m) => m.id === result[i])?.message, `spaced ${i} & [B]bold[/B]`, 'the text arrives unchanged');
    }
    assert.ok(result[3] > 0, 'nested call() params reach the portal');
    assert.equal((await ctx.portal.admin('counters')).preflights - before, 0, 'no preflight');
    assert.equal((await ctx.portal.requests()).length - requestsBefore, 4, 'one request per call');
  } finally {
    site.close();
  }
});

// The frame protocol from inside a window: this page is its own parent (a top-level
// window), so the client's commands arrive here. It answers getInitData first with
// forged replies (another origin, a non-string), which the client must ignore.
test('Client.fromFrame takes answers from the portal origin only, and refuses setTitle outside DEFAULT', async () => {
  const page = `<!doctype html><meta charset="utf-8"><script type="module">
    import { Client, isBitrix24Error } from '/pkg/index.js';
    const errorOf = (p) => p.then(() => null, (e) => ({ guard: isBitrix24Error(e), code: e.code, outcome: e.outcome }));
    window.result = (async () => {
      const outside = await errorOf(Client.fromFrame());
      const sid = 'SID' + Math.random().toString(36).slice(2);
      window.name = location.host + '|0|' + sid;
      const init = { DOMAIN: location.host, PROTOCOL: 0, PATH: '/rest', AUTH_ID: 'frame-token', AUTH_EXPIRES: '3600',
        PLACEMENT: 'CRM_DEAL_DETAIL_TAB', PLACEMENT_OPTIONS: '{"ID":"288"}' };
      let sidSeen;
      window.addEventListener('message', function onCommand(e) {
        if (typeof e.data !== 'string' || !e.data.startsWith('getInitData:')) return;
        window.removeEventListener('message', onCommand);
        const parts = e.data.split(':');
        const id = parts[parts.length - 2];
        sidSeen = parts[parts.length - 1] === sid;
        const forged = JSON.stringify({ ...init, DOMAIN: 'evil.example', AUTH_ID: 'forged-token' });
        window.dispatchEvent(new MessageEvent('message', { data: id + ':' + forged, origin: 'http://evil.example' }));
        window.dispatchEvent(new MessageEvent('message', { data: { id }, origin: location.origin }));
        setTimeout(() => window.dispatchEvent(new MessageEvent('message', { data: id + ':' + JSON.stringify(init), origin: location.origin })), 20);
      });
      const client = await Client.fromFrame();
      const denied = await errorOf(client.setTitle('x'));
      const notFramed = await errorOf(Client.fromWebhook('https://p.example/rest/1/s/').fitWindow());
      return { outside, sidSeen, portal: client.portal, placement: client.placement, denied, notFramed };
    })();
  </script>`;
  const site = await serve({ '/pkg/': pkgDir, '/': page });
  try {
    const { result, logs } = await resultOfPage(`${site.origin}/`);
    assert.deepEqual(result.outside, { guard: true, code: 'NO_AUTH', outcome: 'notExecuted' }, logs.join('\n'));
    assert.equal(result.sidSeen, true, 'commands carry the APP_SID');
    assert.equal(result.portal, site.origin, 'the forged reply (evil.example) was not taken');
    assert.deepEqual(result.placement, { placement: 'CRM_DEAL_DETAIL_TAB', options: { ID: '288' } });
    assert.deepEqual(result.denied, { guard: true, code: 'COMMAND_DENIED', outcome: 'notExecuted' });
    assert.deepEqual(result.notFramed, { guard: true, code: 'NO_AUTH', outcome: 'notExecuted' });
  } finally {
    site.close();
  }
});
