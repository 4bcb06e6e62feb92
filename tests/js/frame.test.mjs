// The demo placement app (www/) inside the local portal's parent page, in headless
// Chromium: the app is served from its own origin and imports the installed package;
// the parent page embeds it the way Bitrix24 does and answers the frame protocol.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { usePortal } from './portal.mjs';
import { launchChromium } from './browser.mjs';

const root = process.env.B24_REPO_ROOT;
const { serveDemo } = await import(pathToFileURL(`${root}/www/serve.mjs`).href);
const pkgDir = new URL('../node_modules/b24-openlines/', import.meta.url);

const ctx = usePortal();
let demo;
let browser;
before(async () => {
  demo = await serveDemo(0, pkgDir);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  demo?.close();
});

/** Opens the deal 288 card tab with the demo app; resolves to { page, app, log }. */
async function openCard(extra = '') {
  const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push(String(e)));
  const url = `${ctx.portal.url}/_portal/frame?app=${encodeURIComponent(`${demo.origin}/`)}`
    + `&placement=CRM_DEAL_DETAIL_TAB&options=${encodeURIComponent('{"ID":"288"}')}&userId=12${extra}`;
  await page.goto(url);
  const app = page.frameLocator('#b24-app');
  try {
    await app.locator('.chat').first().waitFor({ timeout: 15_000 });
  } catch (e) {
    e.message += `\n${logs.join('\n')}`;
    throw e;
  }
  return { page, app, logs };
}

async function send(app, text) {
  await app.locator('#message').fill(text);
  await app.locator('#submit').click();
  await app.locator('#status.ok, #status.error').waitFor({ timeout: 10_000 });
  const ids = await app.locator('#message-id').allTextContents();
  return ids.length === 0 ? null : Number(ids[0]);
}

const frameLog = () => ctx.portal.admin('frame/log');
// The parent page reports each decision with a fetch it does not wait for, so a report may
// reach the portal after what the app saw: read the log until `done(log)` holds (10 s at most).
async function frameLogUntil(done) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const entries = await frameLog();
    if (done(entries) || Date.now() > deadline) return entries;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('the app lists the deal chats, sends a message and fits the frame', async () => {
  const logBefore = (await frameLog()).length;
  const { page, app } = await openCard();
  assert.equal(await app.locator('#subject').textContent(), 'Deal #288');
  assert.deepEqual(await app.locator('.chat input').evaluateAll((els) => els.map((e) => e.value)), ['8773']);
  const id = await send(app, 'Hello from the card');
  assert.ok(id > 0);
  const entry = (await ctx.portal.messages()).find((m) => m.id === id);
  assert.equal(entry.message, 'Hello from the card');
  assert.equal(entry.userId, 12);
  assert.equal(entry.auth, 'token');
  // The card keeps the portal's own title: a card tab cannot set it.
  assert.equal(await page.locator('#pagetitle').textContent(), 'Deal #288');
  const commands = (await frameLog()).slice(logBefore).map((e) => e.command);
  assert.ok(!commands.includes('setTitle'), JSON.stringify(commands));
  // fitWindow: the frame takes the height of the app's content, in pixels.
  const height = await page.locator('#b24-app').evaluate((f) => f.getBoundingClientRect().height);
  const content = await app.locator('html').evaluate((e) => e.scrollHeight);
  assert.ok(height > 150 && Math.abs(height - content) <= 2, `the frame was fitted to its content (${height}px, content ${content}px)`);
  await page.screenshot({ path: `${root}/target/demo-screenshot.png` });
  await page.close();
});

test('after the token expires, the next message refreshes once and is delivered once', async () => {
  const { page, app } = await openCard('&ttl=2');
  const first = await send(app, 'before expiry');
  await new Promise((r) => setTimeout(r, 2500));
  const refreshesBefore = (await frameLog()).filter((e) => e.command === 'refreshAuth' && e.accepted).length;
  const second = await send(app, 'after expiry');
  assert.ok(first > 0 && second > first);
  const accepted = (entries) => entries.filter((e) => e.command === 'refreshAuth' && e.accepted).length;
  const refreshes = accepted(await frameLogUntil((entries) => accepted(entries) > refreshesBefore));
  assert.equal(refreshes - refreshesBefore, 1, 'one refreshAuth');
  const ledger = await ctx.portal.messages();
  assert.equal(ledger.filter((m) => m.message === 'after expiry').length, 1, 'delivered once');
  await page.close();
});

test('messages from a foreign origin, with a wrong APP_SID or denied in a card tab change nothing', async () => {
  const { page, app } = await openCard();
  const title = await page.locator('#pagetitle').textContent();
  const sid = await page.evaluate(() => document.getElementById('b24-app').name.split('|')[2]);
  // The parent page's own origin is not the app's: the parent ignores it.
  await page.evaluate((s) => window.postMessage(`setTitle:{"title":"hacked"}:cb1:${s}`, '*'), sid);
  // The app's origin with a wrong APP_SID: ignored too.
  await app.locator('body').evaluate(() => window.parent.postMessage('setTitle:{"title":"hacked"}:cb2:WRONG', '*'));
  // The app's origin and APP_SID, but a card tab may not set the title: dropped.
  await app.locator('body').evaluate((_, s) => window.parent.postMessage(`setTitle:{"title":"hacked"}:cb3:${s}`, '*'), sid);
  // A forged reply inside the app from its own origin: the client ignores it.
  await app.locator('body').evaluate(() => window.postMessage('b241x1:{"AUTH_ID":"forged","DOMAIN":"evil.example"}', '*'));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await page.locator('#pagetitle').textContent(), title);
  const reasons = (entries) => entries.filter((e) => !e.accepted).map((e) => e.reason);
  const all = (entries) => ['origin', 'sid', 'denied'].every((r) => reasons(entries).includes(r));
  const rejected = reasons(await frameLogUntil(all));
  assert.ok(['origin', 'sid', 'denied'].every((r) => rejected.includes(r)), JSON.stringify(rejected));
  assert.ok((await send(app, 'still fine')) > 0, 'the client still talks to the real portal');
  await page.close();
});

test('bad input shows the validation error without a request', async () => {
  const { page, app } = await openCard();
  const before = (await ctx.portal.requests()).filter((r) => r.method === 'imopenlines.crm.message.add').length;
  assert.equal(await send(app, ''), null);
  assert.equal(await app.locator('#error-code').textContent(), 'ERROR_ARGUMENT');
  await app.locator('#sender').fill('abc');
  assert.equal(await send(app, 'text'), null);
  assert.match(await app.locator('#status').textContent(), /USER_ID/);
  const after = (await ctx.portal.requests()).filter((r) => r.method === 'imopenlines.crm.message.add').length;
  assert.equal(after, before, 'nothing was sent');
  await page.close();
});
