// The installed package in headless Chromium as a plain <script type="module">, served
// from another origin than the portal (as a Bitrix24 app is): the browser entry loads
// its .wasm by itself and the cross-origin call passes the portal's CORS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { startPortal } from './portal.mjs';

const require = createRequire(`${process.env.B24_REPO_ROOT}/package.json`);
const { chromium } = require('playwright-core');
const pkgDir = new URL('../node_modules/b24-openlines/', import.meta.url);
const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

const page = `<!doctype html><meta charset="utf-8"><title>b24</title>
<script type="module">
  import { crmMessageAdd, isBitrix24Error } from '/pkg/index.js';
  const params = new URLSearchParams(location.search);
  const webhookUrl = params.get('webhook');
  const seed = { crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'from a browser' };
  window.result = (async () => {
    const id = await crmMessageAdd(seed, { webhookUrl });
    let error;
    try { await crmMessageAdd({ ...seed, chatId: 8772 }, { webhookUrl }); } catch (e) {
      error = { guard: isBitrix24Error(e), isError: e instanceof Error, code: e.code, status: e.status };
    }
    return { id, error };
  })();
</script>`;

let portal;
let server;
let origin;
before(async () => {
  portal = await startPortal();
  server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      return;
    }
    try {
      const body = await readFile(new URL(path.replace(/^\/pkg\//, ''), pkgDir));
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://localhost:${server.address().port}`;
});
after(async () => {
  server?.close();
  await portal?.stop();
});

test('a module script sends the message cross-origin and gets typed errors', async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  try {
    const tab = await browser.newPage();
    const logs = [];
    tab.on('console', (m) => logs.push(m.text()));
    tab.on('pageerror', (e) => logs.push(String(e)));
    await tab.goto(`${origin}/?webhook=${encodeURIComponent(portal.webhook)}`);
    const result = await tab.evaluate(() => window.result);
    assert.equal(typeof result.id, 'number', logs.join('\n'));
    assert.deepEqual(result.error, { guard: true, isError: true, code: 'CHAT_NOT_IN_CRM', status: 400 });
    const entry = (await portal.messages()).find((m) => m.id === result.id);
    assert.equal(entry?.message, 'from a browser');
  } finally {
    await browser.close();
  }
});
