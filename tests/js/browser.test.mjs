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
