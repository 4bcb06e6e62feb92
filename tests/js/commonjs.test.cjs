// CommonJS users: require('b24-openlines') loads the same API synchronously.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { crmMessageAdd, Client, isBitrix24Error } = require('b24-openlines');

let portal;
before(async () => {
  ({ startPortal: portal } = await import('./portal.mjs'));
  portal = await portal();
});
after(async () => { await portal?.stop(); });

test('require() gives the same client, errors included', async () => {
  const seed = { crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'from CommonJS' };
  const id = await crmMessageAdd(seed, { webhookUrl: portal.webhook });
  assert.equal((await portal.messages()).find((m) => m.id === id)?.message, 'from CommonJS');
  const e = await Client.fromWebhook(portal.webhook).crmMessageAdd({ ...seed, chatId: 8772 }).catch((x) => x);
  assert.ok(isBitrix24Error(e));
  assert.equal(e.code, 'CHAT_NOT_IN_CRM');
});
