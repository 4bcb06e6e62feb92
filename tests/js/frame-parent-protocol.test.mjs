// The local portal's parent page (/_portal/frame) as an app sees it, in headless
// Chromium: a bare test app on its own origin speaks the parent-window protocol the
// way BX24.js does (string messages `command:params:callbackId:APP_SID` to the
// portal's origin, answers `callbackId:JSON` back) and checks what a portal's app
// layout answers, what it drops, and what it shows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, launchChromium } from './browser.mjs';
import { usePortal } from './portal.mjs';


// The test app: reads DOMAIN|PROTOCOL|APP_SID from its frame name, sends commands to the
// parent and resolves each to its answer, or to 'no answer' once `waitMs` has passed.
const APP = `<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0">
<p id="state">ready</p><div style="height:120px"></div>
<script>
  const [domain, protocol, sid] = window.name.split('|');
  const parentOrigin = 'http' + (Number(protocol) ? 's' : '') + '://' + domain.replace(/:(80|443)$/, '');
  const pending = {};
  window.addEventListener('message', (e) => {
    if (e.origin !== parentOrigin || typeof e.data !== 'string') return;
    const at = e.data.indexOf(':');
    const id = e.data.slice(0, at);
    const text = e.data.slice(at + 1);
    if (pending[id]) pending[id](text === '' ? undefined : JSON.parse(text));
  });
  const waitFor = (id, waitMs) => new Promise((resolve) => {
    pending[id] = (v) => { delete pending[id]; resolve(v); };
    setTimeout(() => { if (pending[id]) { delete pending[id]; resolve('no answer'); } }, waitMs);
  });
  const newId = () => Array.from({ length: 32 }, () => '0123456789abcdefghijklmnopqrstuvwxyz'[Math.floor(Math.random() * 36)]).join('');
  window.sid = sid;
  window.send = (command, params, waitMs = 700) => {
    const id = newId();
    const answer = waitFor(id, waitMs);
    parent.postMessage(command + ':' + (params ? JSON.stringify(params) : '') + ':' + id + ':' + sid, parentOrigin);
    return answer;
  };
  window.sendObject = (method, params, waitMs = 700) => {
    const id = newId();
    const answer = waitFor(id, waitMs);
    parent.postMessage({ method, params, callback: id, appSid: sid }, parentOrigin);
    return answer;
  };
</script></body></html>`;

const ctx = usePortal();
let host;
let browser;
before(async () => {
  host = await serve({ '/app/': APP });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  host?.close();
});

const DEAL = { placement: 'CRM_DEAL_DETAIL_TAB', options: '{"ID":"288"}', userId: '12' };

/** Opens the parent page with `query`; resolves to { page, send, sendObject, sid, close }. */
async function open(query = {}) {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  const params = new URLSearchParams({ app: `${host.origin}/app/`, ...query });
  await page.goto(`${ctx.portal.url}/_portal/frame?${params}`);
  const app = page.frameLocator('#b24-app');
  await app.locator('#state').waitFor({ timeout: 15_000 });
  const body = app.locator('body');
  return {
    page,
    send: (command, params, waitMs) => body.evaluate((_, a) => window.send(...a), [command, params, waitMs]),
    sendObject: (method, params) => body.evaluate((_, a) => window.sendObject(...a), [method, params]),
    sid: await body.evaluate(() => window.sid),
    close: () => page.close(),
  };
}

const log = () => ctx.portal.admin('frame/log');
// The parent page reports each decision with a fetch it does not wait for, so a report
// may reach the portal after the answer (or the silence) the app saw: wait for it.
const entriesFor = async (command, since, atLeast = 1) => {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const entries = (await log()).slice(since).filter((e) => e.command === command);
    if (entries.length >= atLeast || Date.now() > deadline) return entries;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

test('getInitData gives the placement options as an object, in both transports', async () => {
  for (const transport of ['post', 'get']) {
    const card = await open({ ...DEAL, transport });
    const init = await card.send('getInitData');
    assert.deepEqual(init.PLACEMENT_OPTIONS, { ID: '288' }, transport);
    assert.equal(init.PLACEMENT, 'CRM_DEAL_DETAIL_TAB');
    assert.equal(init.DOMAIN, new URL(ctx.portal.url).host);
    assert.equal(init.PROTOCOL, 0);
    assert.equal(init.PATH, '/rest');
    assert.equal(init.AUTH_EXPIRES, '3600', 'the lifetime comes as text');
    assert.equal(init.IS_ADMIN, false);
    // The token is the frame user's.
    const profile = await (await fetch(`${ctx.portal.url}${init.PATH}/profile.json?auth=${init.AUTH_ID}`)).json();
    assert.equal(profile.result.ID, '12');
    await card.close();
  }
  // An integer option arrives as text, as the portal writes PHP values into the page.
  const numeric = await open({ ...DEAL, options: '{"ID":288}' });
  assert.deepEqual((await numeric.send('getInitData')).PLACEMENT_OPTIONS, { ID: '288' });
  await numeric.close();
  // The main app page without options: an empty list, not an object.
  const main = await open();
  const init = await main.send('getInitData');
  assert.equal(init.PLACEMENT, 'DEFAULT');
  assert.deepEqual(init.PLACEMENT_OPTIONS, []);
  await main.close();
});

test('a card tab drops setTitle, setScroll and reloadWindow without an answer', async () => {
  const since = (await log()).length;
  const card = await open(DEAL);
  const title = await card.page.locator('#pagetitle').textContent();
  assert.equal(await card.send('setTitle', { title: 'Renamed' }), 'no answer');
  assert.equal(await card.send('setScroll', { scroll: 40 }), 'no answer');
  assert.equal(await card.send('reloadWindow', {}), 'no answer');
  assert.equal(await card.page.locator('#pagetitle').textContent(), title);
  assert.equal(await card.page.title(), title);
  // Not reloaded: the frame is still the same one.
  assert.equal(await card.page.locator('#b24-app').evaluate((f) => f.name.split('|')[2]), card.sid);
  for (const command of ['setTitle', 'setScroll', 'reloadWindow']) {
    assert.deepEqual((await entriesFor(command, since)).map((e) => [e.accepted, e.reason]), [[false, 'denied']], command);
  }
  // Other commands still work.
  assert.equal(typeof (await card.send('resizeWindow', { width: '100%', height: 200 })).height, 'number');
  await card.close();
});

test('the main app page (DEFAULT) answers setTitle with the title and shows it', async () => {
  const main = await open();
  assert.deepEqual(await main.send('setTitle', { title: 'Open-line report' }), { title: 'Open-line report' });
  assert.equal(await main.page.locator('#pagetitle').textContent(), 'Open-line report');
  assert.equal(await main.page.title(), 'Open-line report');
  assert.deepEqual(await main.send('setScroll', { scroll: 0 }), { scroll: 0 });
  await main.close();
});

test('the deny list is configurable per page', async () => {
  const popup = await open({ ...DEAL, deny: 'setTitle,setScroll,reloadWindow,resizeWindow' });
  assert.equal(await popup.send('resizeWindow', { width: '100%', height: 200 }), 'no answer');
  await popup.close();
  const open_ = await open({ ...DEAL, deny: '' });
  assert.deepEqual(await open_.send('setTitle', { title: 'Allowed' }), { title: 'Allowed' });
  assert.equal(await open_.page.locator('#pagetitle').textContent(), 'Allowed');
  await open_.close();
});

test('resizeWindow (and fitWindow, which sends it) answers the frame size in pixels', async () => {
  const card = await open(DEAL);
  const layoutWidth = await card.page.locator('#b24-layout').evaluate((e) => e.getBoundingClientRect().width);
  assert.deepEqual(await card.send('resizeWindow', { width: '100%', height: 420 }), { width: Math.round(layoutWidth), height: 420 });
  const frameHeight = await card.page.locator('#b24-app').evaluate((f) => f.getBoundingClientRect().height);
  assert.equal(frameHeight, 420);
  assert.deepEqual(await card.send('resizeWindow', { width: 500, height: 250 }), { width: 500, height: 250 });
  await card.close();
});

test('getInterface, refreshAuth and the option setters answer as a portal does', async () => {
  const card = await open(DEAL);
  assert.deepEqual(await card.send('getInterface'), { command: [], event: [] });
  const init = await card.send('getInitData');
  const fresh = await card.send('refreshAuth', {});
  assert.deepEqual(Object.keys(fresh).sort(), ['AUTH_EXPIRES', 'AUTH_ID', 'REFRESH_ID']);
  assert.notEqual(fresh.AUTH_ID, init.AUTH_ID);
  assert.equal(fresh.AUTH_EXPIRES, '3600');
  const profile = await (await fetch(`${ctx.portal.url}/rest/profile.json?auth=${fresh.AUTH_ID}`)).json();
  assert.equal(profile.result.ID, '12');
  assert.equal((await card.send('getInitData')).AUTH_ID, fresh.AUTH_ID, 'getInitData has the new token');
  // A colon inside the JSON parameters is fine: the parent takes the last two parts.
  const option = { name: 'home', value: 'http://example.com:8080/x' };
  assert.deepEqual(await card.send('setUserOption', option), option);
  assert.deepEqual(await card.send('setInstall', { install: true }), { install: true });
  // Only an admin's setAppOption is answered.
  assert.equal(await card.send('setAppOption', { name: 'a', value: '1' }), 'no answer');
  await card.close();
  const admin = await open({ userId: '1' });
  assert.deepEqual(await admin.send('setAppOption', { name: 'a', value: '1' }), { a: '1' });
  assert.deepEqual(await admin.send('setAppOption', { name: 'b', value: '2' }), { a: '1', b: '2' });
  await admin.close();
});

test('UI commands are accepted and left unanswered; openPath refuses paths it may not open', async () => {
  const since = (await log()).length;
  const card = await open(DEAL);
  assert.deepEqual(await card.send('openPath', { path: '/settings/' }), { result: 'error', errorCode: 'PATH_NOT_AVAILABLE' });
  for (const [command, params] of [['openPath', { path: '/crm/deal/details/288/' }], ['selectUser', { mult: false }],
    ['selectCRM', { entityType: ['deal'] }], ['imOpenMessenger', { dialogId: 'chat8773' }], ['openApplication', {}],
    ['closeApplication', null], ['placementBindEvent', { event: 'x' }]]) {
    const before = (await entriesFor(command, since, 0)).length;
    assert.equal(await card.send(command, params, 300), 'no answer', command);
    const entries = await entriesFor(command, since, before + 1);
    assert.equal(entries.at(-1).accepted, true, command);
    assert.equal(entries.at(-1).answered, false, command);
  }
  await card.close();
  // placementBindEvent exists only for placements; unknown commands are dropped.
  const main = await open();
  assert.equal(await main.send('placementBindEvent', { event: 'x' }, 300), 'no answer');
  assert.equal(await main.send('noSuchCommand', {}, 300), 'no answer');
  await entriesFor('placementBindEvent', since, 2);
  await entriesFor('noSuchCommand', since);
  const reasons = (await log()).slice(since).filter((e) => !e.accepted).map((e) => `${e.command}:${e.reason}`);
  assert.ok(reasons.includes('placementBindEvent:unknown') && reasons.includes('noSuchCommand:unknown'), JSON.stringify(reasons));
  // The object form of a message is understood too.
  assert.deepEqual(await main.sendObject('getInterface', {}), { command: [], event: [] });
  await main.close();
});

test('setInstallFinish and reloadWindow (DEFAULT) reload the parent page', async () => {
  const main = await open();
  // The page goes away while the app waits, so the app does not wait here.
  await main.page.frameLocator('#b24-app').locator('body').evaluate(() => { window.send('setInstallFinish', {}, 100); });
  await main.page.waitForURL(/install_finished=Y/, { timeout: 10_000 });
  await main.page.frameLocator('#b24-app').locator('#state').waitFor({ timeout: 15_000 });
  const sid = await main.page.locator('#b24-app').evaluate((f) => f.name.split('|')[2]);
  assert.notEqual(sid, main.sid, 'a new frame after the reload');
  const body = main.page.frameLocator('#b24-app').locator('body');
  await body.evaluate(() => { window.send('reloadWindow', {}, 100); });
  await main.page.waitForFunction((old) => document.getElementById('b24-app').name.split('|')[2] !== old, sid, { timeout: 10_000 });
  await main.close();
});
