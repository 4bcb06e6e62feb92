// The other imopenlines.crm.* calls and call(), with typed results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'b24-openlines';
import { rejectionOf, usePortal } from './portal.mjs';

const deal = { crmEntityType: 'deal', crmEntity: 288 };
const ctx = usePortal((portal) => ({ client: Client.fromWebhook(portal.webhook) }));

test('crmChatGet lists chats with numeric ids; activeOnly:false includes finished ones', async () => {
  const active = await ctx.client.crmChatGet(deal);
  assert.ok(Array.isArray(active));
  assert.deepEqual(active.map((c) => c.chatId), [8773]);
  assert.equal(typeof active[0].connectorId, 'string');
  assert.equal(typeof active[0].connectorTitle, 'string');
  const all = await ctx.client.crmChatGet({ ...deal, activeOnly: false });
  assert.deepEqual(all.map((c) => c.chatId).sort(), [8772, 8773]);
  assert.deepEqual(await ctx.client.crmChatGet({ crmEntityType: 'company', crmEntity: 301 }), []);
});

test('crmChatGetLastId returns a number, and the portal code for a missing item', async () => {
  assert.equal(await ctx.client.crmChatGetLastId({ crmEntityType: 'lead', crmEntity: 101 }), 8801);
  const e = await rejectionOf(ctx.client.crmChatGetLastId({ crmEntityType: 'company', crmEntity: 301 }));
  assert.equal(e.code, 'CRM_CHAT_EMPTY_CRM_DATA');
  const v = await rejectionOf(ctx.client.crmChatGetLastId({ crmEntityType: 'lead' }));
  assert.equal(v.code, 'CRM_CHAT_EMPTY_CRM_DATA');
  assert.equal(v.status, 0, 'caught before sending');
});

test('crmChatUserAdd lets a user write to the chat; crmChatUserDelete takes it back', async () => {
  const params = { ...deal, userId: 14, chatId: 8773 };
  const message = { ...deal, userId: 14, chatId: 8773, message: 'joined' };
  assert.equal((await rejectionOf(ctx.client.crmMessageAdd(message))).code, 'CANCELED');
  assert.equal(await ctx.client.crmChatUserAdd(params), 8773);
  assert.equal(typeof (await ctx.client.crmMessageAdd(message)), 'number');
  assert.equal((await rejectionOf(ctx.client.crmChatUserAdd(params))).code, 'WRONG_REQUEST');
  assert.equal(await ctx.client.crmChatUserDelete(params), 8773);
  assert.equal((await rejectionOf(ctx.client.crmMessageAdd(message))).code, 'CANCELED');
  const e = await rejectionOf(ctx.client.crmChatUserDelete({ ...deal, chatId: 8773 }));
  assert.equal(e.code, 'CRM_CHAT_EMPTY_USER');
});

test('crmLeadCreate turns an unbound chat into a lead', async () => {
  assert.equal(await ctx.client.crmLeadCreate({ chatId: 8900 }), true);
  assert.equal((await rejectionOf(ctx.client.crmLeadCreate({}))).code, 'CHAT_ID');
});

test('call() reaches any method and returns its result as sent', async () => {
  const profile = await ctx.client.call('profile');
  assert.equal(String(profile.ID), '1');
  const chats = await ctx.client.call('IMOPENLINES.CRM.CHAT.GET', { CRM_ENTITY_TYPE: 'deal', CRM_ENTITY: '288' });
  assert.equal(chats[0].CHAT_ID, '8773', 'raw results keep the portal types');
});
