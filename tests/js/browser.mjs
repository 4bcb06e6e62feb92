// Headless Chromium (Debian's, driven by playwright-core) and a static file server,
// for the tests that load the package in a real browser.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname } from 'node:path';

const require = createRequire(`${process.env.B24_REPO_ROOT}/package.json`);
const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.css': 'text/css' };

/**
 * Serves `routes` ({ '/path/': directory URL or string body }) on a free loopback port,
 * as http://localhost:PORT (another origin than the portal's 127.0.0.1).
 */
export async function serve(routes) {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const prefix = Object.keys(routes).filter((p) => path.startsWith(p)).sort((a, b) => b.length - a.length)[0];
    try {
      const target = routes[prefix];
      const body = typeof target === 'string' ? target : await readFile(new URL(path.slice(prefix.length) || 'index.html', target));
      const type = typeof target === 'string' ? 'text/html' : types[extname(path) || '.html'];
      res.writeHead(200, { 'content-type': type ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://localhost:${server.address().port}`, close: () => server.close() };
}

/** Headless Chromium (Debian's) as every browser test runs it. */
export function launchChromium() {
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
}

/** Opens `url` in headless Chromium and resolves to `window.result` (awaited), with the page's logs. */
export async function resultOfPage(url) {
  const browser = await launchChromium();
  const logs = [];
  try {
    const tab = await browser.newPage();
    tab.on('console', (m) => logs.push(m.text()));
    tab.on('pageerror', (e) => logs.push(String(e)));
    await tab.goto(url);
    await tab.waitForFunction(() => window.result !== undefined, null, { timeout: 20_000 });
    return { result: await tab.evaluate(() => window.result), logs };
  } catch (e) {
    e.message += `\npage logs:\n${logs.join('\n')}`;
    throw e;
  } finally {
    await browser.close();
  }
}

/** The script both browser tests run: the seed message, then a CHAT_NOT_IN_CRM error. */
export const pageScript = (importFrom) => `
  import { crmMessageAdd, isBitrix24Error } from '${importFrom}';
  const webhookUrl = new URLSearchParams(location.search).get('webhook');
  const seed = { crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'from a browser' };
  window.result = (async () => {
    const id = await crmMessageAdd(seed, { webhookUrl });
    let error;
    try { await crmMessageAdd({ ...seed, chatId: 8772 }, { webhookUrl }); } catch (e) {
      error = { guard: isBitrix24Error(e), isError: e instanceof Error, code: e.code, status: e.status };
    }
    return { id, error };
  })();
`;
