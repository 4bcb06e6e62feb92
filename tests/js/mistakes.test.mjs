// The mistakes a newcomer makes, each answered with what to do, before anything is sent
// where it can be: blank and oversized texts, the portal's wire names, a missing scope,
// a sender that is not a member, an endpoint without /rest/, https to a local portal,
// an expired token without refresh, adding a member twice; and the traps: errors of
// two copies of the package, reports of requests that never left, unreadable stacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { Client, crmMessageAdd, sendToCrmItem, Bitrix24Error, isBitrix24Error } from 'b24-openlines';
import { rejectionOf, seed, usePortal } from './portal.mjs';

const ctx = usePortal();
const requests = async () => (await ctx.portal.requests()).length;

/** `f()` rejects with these fields and sends nothing. */
async function refusedBeforeSending(f, fields) {
  const before = await requests();
  const e = await rejectionOf(f());
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof RegExp) assert.match(String(e[k]), v, `${k}: ${e.message}`);
    else assert.equal(e[k], v, `${k}: ${e.message}`);
  }
  assert.equal(e.outcome, 'notExecuted');
  assert.equal(await requests(), before, 'nothing was sent');
  return e;
}

test('blank messages are refused: spaces, line-break codes; "0" is empty to the portal', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  for (const message of ['   ', '[BR][br]', ' #BR# \n\t']) {
    await refusedBeforeSending(() => client.crmMessageAdd({ ...seed, message }),
      { code: 'ERROR_ARGUMENT', argument: 'MESSAGE', message: /blank.*empty message/ });
    await refusedBeforeSending(() => client.sendToCrmItem({ crmEntityType: 'deal', crmEntity: 288, message }),
      { code: 'ERROR_ARGUMENT', argument: 'MESSAGE' });
  }
  await refusedBeforeSending(() => client.crmMessageAdd({ ...seed, message: '0' }),
    { code: 'ERROR_ARGUMENT', argument: 'MESSAGE', message: /null or empty/ });
});

test('a message longer than the portal keeps is refused unless truncate: true accepts the cut', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  for (const length of [25_000, 200_000]) {
    await refusedBeforeSending(() => client.crmMessageAdd({ ...seed, message: 'x'.repeat(length) }),
      { code: 'MESSAGE_TOO_LONG', argument: 'MESSAGE', kind: 'invalidArgument', message: /truncate: true/ });
  }
  // 20,006 characters are kept whole; line-break codes count as one.
  assert.equal(typeof await client.crmMessageAdd({ ...seed, message: 'y'.repeat(20_006) }), 'number');
  assert.equal(typeof await client.crmMessageAdd({ ...seed, message: `${'z'.repeat(20_000)}[BR][BR]` }), 'number');
  const id = await client.crmMessageAdd({ ...seed, message: 'q'.repeat(25_000) }, { truncate: true });
  const history = await client.call('im.dialog.messages.get', { DIALOG_ID: 'chat8773', LIMIT: 5 });
  const stored = history.messages.find((m) => Number(m.id) === id);
  assert.equal(stored.text, `${'q'.repeat(20_000)} (...)`, 'cut by the portal, as accepted');
  const [entry] = await client.crmMessageAddMany([{ ...seed, message: 'v'.repeat(30_000) }]);
  assert.equal(entry.error.code, 'MESSAGE_TOO_LONG');
  const [item] = await client.sendToCrmItems([{ crmEntityType: 'deal', crmEntity: 288, message: 'u'.repeat(30_000) }]);
  assert.equal(item.error.code, 'MESSAGE_TOO_LONG');
});

test('the portal\'s wire names and unknown keys are refused by name, never dropped', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const e = await refusedBeforeSending(
    () => client.crmMessageAdd({ CRM_ENTITY_TYPE: 'deal', CRM_ENTITY_ID: 288, USER_ID: 12, CHAT_ID: 8773, MESSAGE: 'x' }),
    { code: 'ERROR_ARGUMENT', argument: 'CRM_ENTITY_TYPE', message: /pass crmEntityType/ });
  assert.ok(!e.message.includes('null or empty'), e.message);
  await refusedBeforeSending(() => client.crmMessageAdd({ ...seed, CRM_ENTITY_ID: 288 }),
    { argument: 'CRM_ENTITY_ID', message: /pass crmEntity / });
  await refusedBeforeSending(() => client.crmMessageAdd({ ...seed, attach: [{ MESSAGE: 'x' }] }),
    { argument: 'attach', message: /attach is not a parameter of imopenlines\.crm\.message\.add/ });
  await refusedBeforeSending(() => client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288, chatId: 8773 }),
    { argument: 'chatId', message: /not a parameter of imopenlines\.crm\.chat\.get/ });
  await refusedBeforeSending(() => sendToCrmItem({ crmEntityType: 'deal', crmEntity: 288, message: 'x', connector: 'telegrambot' }, { webhookUrl: ctx.portal.webhook }),
    { argument: 'connector', message: /connectorId\?/ });
});

test('each refusal says what to do: scope for verify, membership, /rest/, http, refresh, a member twice', async () => {
  // verify on a webhook without the im scope.
  const { webhook } = await ctx.portal.admin('webhooks', { userId: 12, scope: ['imopenlines', 'crm'] });
  const v = await rejectionOf(crmMessageAdd({ ...seed, message: 'verified' }, { webhookUrl: webhook, verify: true }));
  assert.equal(v.code, 'insufficient_scope');
  assert.equal(v.method, 'im.dialog.messages.get');
  assert.match(v.hint, /verify: true.*im scope/);
  assert.ok(v.message.endsWith(v.hint), v.message);
  // A sender that is not a member.
  const c = await rejectionOf(crmMessageAdd({ ...seed, userId: 14 }, { webhookUrl: ctx.portal.webhook }));
  assert.equal(c.code, 'CANCELED');
  assert.match(c.hint, /member of the chat.*crmChatUserAdd.*sendToCrmItem/);
  // A clientEndpoint without /rest/: refused before sending, not a 404.
  await refusedBeforeSending(() => Client.fromToken({ clientEndpoint: `${ctx.portal.url}/`, accessToken: 't' }).crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }),
    { code: 'NO_AUTH', message: /must end in \/rest\// });
  // https to a portal on this machine that speaks http.
  const host = new URL(ctx.portal.url).host;
  const h = await rejectionOf(Client.fromToken({ domain: host, accessToken: ctx.portal.accessToken }).crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }));
  assert.equal(h.code, 'NETWORK_ERROR');
  assert.match(h.hint, /plain http: write the scheme in domain, e\.g\. 'http:\/\/127\.0\.0\.1:8080'/);
  // An expired token and no refresh.
  const { accessToken } = await ctx.portal.admin('tokens', { userId: 12 });
  await ctx.portal.admin('tokens/expire', { accessToken });
  const x = await rejectionOf(Client.fromToken({ clientEndpoint: ctx.portal.clientEndpoint, accessToken }).crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }));
  assert.equal(x.code, 'expired_token');
  assert.match(x.hint, /pass refresh/);
  // Adding a member twice: the portal's code, and what it means.
  const client = Client.fromWebhook(ctx.portal.webhook);
  const w = await rejectionOf(client.crmChatUserAdd({ crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773 }));
  assert.equal(w.code, 'WRONG_REQUEST');
  assert.match(w.hint, /already a member of the chat \(nothing to do then\)/);
});

test('an error of the CommonJS entry is instanceof the ESM Bitrix24Error, and back', async () => {
  const require = createRequire(import.meta.url);
  const cjs = require('b24-openlines');
  assert.notEqual(cjs.Bitrix24Error, Bitrix24Error, 'two copies of the class');
  const fromCjs = await rejectionOf(cjs.crmMessageAdd({ ...seed, message: '' }, { webhookUrl: ctx.portal.webhook }));
  const fromEsm = await rejectionOf(crmMessageAdd({ ...seed, message: '' }, { webhookUrl: ctx.portal.webhook }));
  assert.ok(fromCjs instanceof Bitrix24Error);
  assert.ok(fromEsm instanceof cjs.Bitrix24Error);
  assert.ok(isBitrix24Error(fromCjs) && cjs.isBitrix24Error(fromEsm));
  assert.ok(!(new Error('x') instanceof Bitrix24Error));
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  assert.equal(revoked.proxy instanceof Bitrix24Error, false, 'never throws');
});

test('onRequest reports only requests that left: an abort from onProgress cancels the next batch before it goes', async () => {
  const events = [];
  const client = Client.fromWebhook(ctx.portal.webhook, { onRequest: (e) => events.push(e) });
  const controller = new AbortController();
  const before = await requests();
  const items = Array.from({ length: 120 }, (_, i) => ({ ...seed, message: `progress ${i}` }));
  const out = await client.crmMessageAddMany(items, { signal: controller.signal, onProgress: () => controller.abort() });
  assert.equal(out.filter((e) => e.ok).length, 50, 'the first batch only');
  assert.ok(out.slice(50).every((e) => e.error.code === 'ABORTED' && e.error.outcome === 'notExecuted'));
  const sent = (await ctx.portal.requests()).slice(before);
  assert.equal(sent.length, 1, 'one batch reached the portal');
  assert.deepEqual(events.map((e) => [e.method, e.status]), [['batch', 200]]);
});

test('an uncaught rejection prints short lines, not the whole minified file', async () => {
  const file = new URL('../uncaught.mjs', import.meta.url);
  await writeFile(file, `import { crmMessageAdd } from 'b24-openlines';\nawait crmMessageAdd({ crmEntityType: 'deal' }, { webhookUrl: 'http://127.0.0.1:9/rest/1/s/' });\n`);
  const run = promisify(execFile)(process.execPath, [file.pathname]);
  const e = await rejectionOf(run);
  assert.match(e.stderr, /Bitrix24Error/);
  const longest = Math.max(...e.stderr.split('\n').map((l) => l.length));
  assert.ok(longest <= 400, `longest line ${longest} characters`);
  assert.ok(e.stderr.length < 2500, `${e.stderr.length} bytes printed`);
});
