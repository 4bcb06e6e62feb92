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

/** Opens a deal card tab (deal 288 unless `deal` says) with the demo app, once the app
 * has loaded (its `body[data-state]` is set); resolves to { page, app, logs }. */
async function openCard(extra = '', deal = 288) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push(String(e)));
  const url = `${ctx.portal.url}/_portal/frame?app=${encodeURIComponent(`${demo.origin}/`)}`
    + `&placement=CRM_DEAL_DETAIL_TAB&options=${encodeURIComponent(JSON.stringify({ ID: String(deal) }))}&userId=12${extra}`;
  await page.goto(url);
  const app = page.frameLocator('#b24-app');
  try {
    await app.locator('body[data-state]').waitFor({ timeout: 15_000 });
  } catch (e) {
    e.message += `\n${logs.join('\n')}`;
    throw e;
  }
  return { page, app, logs };
}

/** Sends `text` from the form; resolves to the new message's id (null on an error) once
 * the app shows the outcome and, after a success, the chat history holds the message. */
async function send(app, text) {
  await app.locator('#message').fill(text);
  await app.locator('#submit').click();
  await app.locator('#status.ok, #status.error').waitFor({ timeout: 10_000 });
  const ids = await app.locator('#message-id').allTextContents();
  if (ids.length === 0) return null;
  const id = Number(ids[0]);
  await app.locator(`#messages .msg.new[data-id="${id}"]`).waitFor({ timeout: 10_000 });
  return id;
}

/** The texts of the messages the app shows, oldest first. */
const shownTexts = (app) => app.locator('#messages .msg .text').allTextContents();
/** How many REST requests of `method` the portal has seen. */
const requestCount = async (method) => (await ctx.portal.requests()).filter((r) => r.method === method).length;

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

test('the app shows the deal chat, sends a message as the current user and fits the frame', async () => {
  const logBefore = (await frameLog()).length;
  const { page, app } = await openCard();
  assert.equal(await app.locator('#subject').textContent(), 'Deal #288');
  // One active chat: the app says where the message goes, with nothing to pick, and
  // there is no sender field: the message goes out as the frame's user.
  assert.equal(await app.locator('.chat').count(), 1);
  assert.equal(await app.locator('.chat input').count(), 0);
  assert.equal(await app.locator('.chat').getAttribute('data-chat'), '8773');
  assert.match(await app.locator('.chat').textContent(), /Telegram/);
  assert.equal(await app.locator('#send input').count(), 0, 'the form has the message only');
  const id = await send(app, 'Hello from the card');
  assert.ok(id > 0);
  const entry = (await ctx.portal.messages()).find((m) => m.id === id);
  assert.equal(entry.message, 'Hello from the card');
  assert.equal(entry.chatId, 8773);
  assert.equal(entry.userId, 12, 'sent as the frame\'s user');
  assert.equal(entry.auth, 'token');
  // The chat history, reloaded after the send, ends with the new message, marked.
  const texts = await shownTexts(app);
  assert.equal(texts.at(-1), 'Hello from the card', JSON.stringify(texts));
  assert.equal(await app.locator('#messages .msg.new .author').textContent(), 'Olga Ivanova');
  // The card keeps the portal's own title: a card tab cannot set it.
  assert.equal(await page.locator('#pagetitle').textContent(), 'Deal #288');
  const commands = (await frameLog()).slice(logBefore).map((e) => e.command);
  assert.ok(!commands.includes('setTitle'), JSON.stringify(commands));
  // fitWindow: the frame takes the height of the app's content, in pixels (the app asks
  // again after the history reloads: wait for that resize to land).
  const fitted = async () => {
    const height = await page.locator('#b24-app').evaluate((f) => f.getBoundingClientRect().height);
    const content = await app.locator('html').evaluate((e) => e.scrollHeight);
    return { height, content, ok: height > 150 && Math.abs(height - content) <= 2 };
  };
  let fit = await fitted();
  for (const deadline = Date.now() + 5000; !fit.ok && Date.now() < deadline; fit = await fitted()) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(fit.ok, `the frame was fitted to its content (${fit.height}px, content ${fit.content}px)`);
  await page.screenshot({ path: `${root}/www/screenshot.png` });
  await page.close();
});

test('with two active chats the user picks the channel, and the message goes there', async () => {
  const { page, app } = await openCard('', 290);
  assert.equal(await app.locator('#subject').textContent(), 'Deal #290');
  const radios = app.locator('.chat input[type=radio]');
  assert.deepEqual(await radios.evaluateAll((els) => els.map((e) => [e.value, e.checked])), [['8810', true], ['8811', false]],
    'both chats, the newest chosen');
  assert.match(await app.locator('.chat').nth(0).textContent(), /WhatsApp/);
  await app.getByLabel(/Telegram/).check();
  await app.locator('#history-title', { hasText: 'Telegram' }).waitFor({ timeout: 5000 });
  const id = await send(app, 'Through Telegram, please');
  assert.ok(id > 0);
  const entry = (await ctx.portal.messages()).find((m) => m.id === id);
  assert.equal(entry.chatId, 8811, 'the chosen chat');
  assert.equal(entry.userId, 12);
  assert.equal(entry.crmEntity, 290);
  assert.equal((await shownTexts(app)).at(-1), 'Through Telegram, please');
  assert.match(await app.locator('#status').textContent(), /Telegram/);
  // The other channel's history does not have it.
  await app.getByLabel(/WhatsApp/).check();
  await app.locator('#history-title', { hasText: 'WhatsApp' }).waitFor({ timeout: 5000 });
  await app.locator('#messages .note, #messages .msg').first().waitFor({ timeout: 5000 });
  assert.ok(!(await shownTexts(app)).includes('Through Telegram, please'));
  await page.close();
});

test('an item whose dialogues are all over shows an empty state and no form', async () => {
  const sentBefore = (await ctx.portal.messages()).length;
  const { page, app } = await openCard('', 291);
  assert.equal(await app.locator('body').getAttribute('data-state'), 'empty');
  assert.ok(await app.locator('#empty').isVisible());
  assert.match(await app.locator('#empty').textContent(), /No active open-line dialogue/);
  assert.match(await app.locator('#empty').textContent(), /2 dialogues are finished or still waiting/);
  assert.equal(await app.locator('#send').isVisible(), false, 'no form');
  assert.equal(await app.locator('#message').isVisible(), false);
  assert.equal(await app.locator('.chat').count(), 0);
  assert.equal((await ctx.portal.messages()).length, sentBefore, 'nothing was sent');
  await page.close();
});

test('the app reads the current user once per client, across sends', async () => {
  const before = await requestCount('user.current');
  const { page, app } = await openCard();
  assert.equal(await requestCount('user.current'), before, 'not before the first send');
  const first = await send(app, 'first of two');
  const second = await send(app, 'second of two');
  assert.ok(first > 0 && second > first);
  assert.equal(await requestCount('user.current'), before + 1, 'user.current asked once');
  const ledger = await ctx.portal.messages();
  assert.deepEqual([first, second].map((id) => ledger.find((m) => m.id === id).userId), [12, 12]);
  assert.deepEqual((await shownTexts(app)).slice(-2), ['first of two', 'second of two']);
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
  const before = (await ctx.portal.requests()).length;
  assert.equal(await send(app, ''), null);
  assert.equal(await app.locator('#error-code').textContent(), 'ERROR_ARGUMENT');
  assert.match(await app.locator('#status').textContent(), /MESSAGE/);
  // A lone surrogate would reach the portal as U+FFFD: not the text typed, so refused.
  await app.locator('#message').evaluate((el) => { el.value = 'broken \ud800 text'; });
  await app.locator('#submit').click();
  await app.locator('#status', { hasText: 'surrogate' }).waitFor({ timeout: 10_000 });
  assert.equal(await app.locator('#error-code').textContent(), 'ERROR_ARGUMENT');
  const after = (await ctx.portal.requests()).length;
  assert.equal(after, before, 'no request at all, not even user.current');
  await page.close();
});
