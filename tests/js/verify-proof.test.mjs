// Verified delivery against a current portal, whose history shows a message's text
// through the messenger's parser (links wrapped in [URL] tags, entities decoded, ...),
// and an older one showing the stored text; and the rules that allow a resend only on
// proof of absence: the request ended, the settle window passed, and every message by
// the same author after the watermark is accounted for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, crmMessageAdd } from 'b24-openlines';
import { rejectionOf, seed, usePortal } from './portal.mjs';
import { PROBES } from './probes.mjs';

const ctx = usePortal();
const M = 'imopenlines.crm.message.add';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stored = async (text) => (await ctx.portal.messages()).filter((m) => m.message === text);
const mode = (historyText) => ctx.portal.admin('settings', { historyText });

for (const historyText of ['parsed', 'stored']) {
  test(`history as ${historyText}: every probe text whose answer was lost after storing is found with its id, never resent`, async () => {
    await mode(historyText);
    const client = Client.fromWebhook(ctx.portal.webhook, { verify: true, settleMs: 150, limits: false });
    const found = [];
    for (const [i, probe] of PROBES.entries()) {
      const text = `${probe} #${i}-${historyText}`;
      await ctx.portal.faults([{ method: M, kind: 'drop_after_store' }]);
      // truncate: the probes include a text the portal cuts, sent knowingly.
      const id = await client.crmMessageAdd({ ...seed, message: text }, { truncate: true }).catch((e) => e);
      const copies = await stored(text);
      assert.equal(copies.length, 1, `${JSON.stringify(probe)}: stored once`);
      if (typeof id === 'number') {
        assert.equal(copies[0].id, id, `${JSON.stringify(probe)}: its own id`);
        found.push(i);
      } else {
        assert.equal(id.outcome, 'unknown', id.message);
      }
    }
    console.log(`# ${historyText} history: ${found.length} of ${PROBES.length} probe texts recognised`);
    assert.equal(found.length, PROBES.length, `not recognised: ${PROBES.filter((_, i) => !found.includes(i)).map((p) => JSON.stringify(p.slice(0, 60)))}`);
  });
}

test('a send slower than the call allows is watched, not aborted: it stays unknown and is stored once', async () => {
  await mode('parsed');
  const text = `slow unknown https://slow.example/${Math.random()}`;
  await ctx.portal.faults([{ method: M, kind: 'delay', delayMs: 1500 }]);
  const started = Date.now();
  const e = await rejectionOf(crmMessageAdd({ ...seed, message: text }, { webhookUrl: ctx.portal.webhook, timeoutMs: 200, verify: true, settleMs: 300 }));
  assert.equal(e.outcome, 'unknown', e.message);
  assert.match(e.message, /still running/);
  assert.ok(Date.now() - started < 1400, 'the call gave up at its timeout and settle window');
  await sleep(1500);
  assert.equal((await stored(text)).length, 1, 'the slow request stored it once; it was not resent');
});

test('a send slower than its timeout but within the settle window resolves to the id its own request returns', async () => {
  await mode('parsed');
  const text = `slow found https://slow.example/${Math.random()}`;
  await ctx.portal.faults([{ method: M, kind: 'delay', delayMs: 600 }]);
  const id = await crmMessageAdd({ ...seed, message: text }, { webhookUrl: ctx.portal.webhook, timeoutMs: 200, verify: true, settleMs: 700 });
  const copies = await stored(text);
  assert.equal(copies.length, 1);
  assert.equal(copies[0].id, id);
  const sends = (await ctx.portal.requests()).filter((r) => r.method === M);
  assert.equal(sends.at(-1).status, 200, 'the one send was answered, not aborted');
});

test('a mass send whose batch outlasts the call stays unknown and is stored once', async () => {
  await mode('parsed');
  const client = Client.fromWebhook(ctx.portal.webhook, { limits: false, retry: false });
  const tag = Math.random().toString(36).slice(2);
  const items = Array.from({ length: 3 }, (_, i) => ({ ...seed, message: `slow batch ${tag} ${i} https://x.example/${i}` }));
  await ctx.portal.faults([{ method: 'batch', kind: 'delay', delayMs: 1500 }]);
  const entries = await client.crmMessageAddMany(items, { verify: true, timeoutMs: 200, settleMs: 300 });
  assert.ok(entries.every((e) => !e.ok && e.error.outcome === 'unknown'), JSON.stringify(entries));
  await sleep(1500);
  for (const item of items) assert.equal((await stored(item.message)).length, 1, item.message);
});

/** Sends a message by the same author from another client while `during` runs. */
const foreignDuring = async (ms) => {
  await sleep(ms);
  const other = Client.fromWebhook(ctx.portal.webhook);
  return other.crmMessageAdd({ ...seed, message: `typed by the operator ${Math.random()}` });
};

test('a message by the same author that the client cannot account for keeps an unmatched message unknown, with its id as a candidate', async () => {
  await mode('parsed');
  const client = Client.fromWebhook(ctx.portal.webhook, { limits: false });
  const text = `not stored ${Math.random()}`;
  await ctx.portal.faults([{ method: M, kind: 'status500_before' }]);
  const [e, foreign] = await Promise.all([
    rejectionOf(client.crmMessageAdd({ ...seed, message: text }, { verify: true, settleMs: 500 })),
    foreignDuring(150),
  ]);
  assert.equal(e.outcome, 'unknown', e.message);
  assert.deepEqual(e.candidates, [foreign]);
  assert.match(e.message, new RegExp(`ids ${foreign}`));
  assert.equal((await stored(text)).length, 0, 'not resent: absence was not proven');
});

test('the same in a mass send: items not found stay unknown with the candidate', async () => {
  await mode('parsed');
  const client = Client.fromWebhook(ctx.portal.webhook, { limits: false, retry: false });
  const tag = Math.random().toString(36).slice(2);
  const items = Array.from({ length: 3 }, (_, i) => ({ ...seed, message: `mass foreign ${tag} ${i}` }));
  await ctx.portal.faults([{ method: 'batch', kind: 'status500_before' }]);
  const [entries, foreign] = await Promise.all([
    client.crmMessageAddMany(items, { verify: true, settleMs: 500 }),
    foreignDuring(150),
  ]);
  for (const e of entries) {
    assert.equal(e.ok, false);
    assert.equal(e.error.outcome, 'unknown', e.error.message);
    assert.deepEqual(e.error.candidates, [foreign]);
  }
  for (const item of items) assert.equal((await stored(item.message)).length, 0);
});

test('messages of the same client are accounted for: concurrent sends do not block each other', async () => {
  await mode('parsed');
  const client = Client.fromWebhook(ctx.portal.webhook, { limits: false });
  const text = `lost among siblings ${Math.random()}`;
  await ctx.portal.faults([{ method: M, kind: 'status500_before' }]);
  const siblings = Array.from({ length: 4 }, (_, i) => sleep(50 + i * 40).then(() => client.crmMessageAdd({ ...seed, message: `sibling ${i} https://s.example/${i} ${Math.random()}` })));
  const id = await client.crmMessageAdd({ ...seed, message: text }, { verify: true, settleMs: 400 });
  await Promise.all(siblings);
  const copies = await stored(text);
  assert.equal(copies.length, 1, 'proven absent, sent once more');
  assert.equal(copies[0].id, id);
});

test('a text the client cannot recognise in the history ([cut]) is never resent', async () => {
  await mode('parsed');
  const client = Client.fromWebhook(ctx.portal.webhook, { limits: false });
  const text = `details [cut]hidden part ${Math.random()}[/cut]`;
  await ctx.portal.faults([{ method: M, kind: 'drop_after_store' }]);
  const e = await rejectionOf(client.crmMessageAdd({ ...seed, message: text }, { verify: true, settleMs: 200 }));
  const copies = await stored(text);
  assert.equal(copies.length, 1, 'stored once, not resent');
  assert.equal(e.outcome, 'unknown', e.message);
  assert.deepEqual(e.candidates, [copies[0].id]);
  // On an older portal the stored text comes back, and it is recognised.
  await mode('stored');
  const text2 = `${text} again`;
  await ctx.portal.faults([{ method: M, kind: 'drop_after_store' }]);
  const id = await client.crmMessageAdd({ ...seed, message: text2 }, { verify: true, settleMs: 200 });
  assert.equal((await stored(text2))[0]?.id, id);
  await mode('parsed');
});

test('a message holding a lone surrogate is refused, naming MESSAGE; nothing is sent', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const before = (await ctx.portal.requests()).length;
  for (const message of ['\uD800 x', 'x \uDC00', 'a\uD83D']) {
    const e = await rejectionOf(client.crmMessageAdd({ ...seed, message }));
    assert.equal(e.code, 'ERROR_ARGUMENT');
    assert.equal(e.argument, 'MESSAGE');
    assert.equal(e.outcome, 'notExecuted');
    assert.match(e.message, /lone surrogate/);
  }
  // A whole pair is a character like any other.
  assert.equal(typeof await client.crmMessageAdd({ ...seed, message: 'pair \uD83D\uDE00' }), 'number');
  assert.equal((await ctx.portal.requests()).length, before + 1);
});

test('boxed strings, numbers and booleans in typed params are refused by name', async () => {
  const client = Client.fromWebhook(ctx.portal.webhook);
  const before = (await ctx.portal.requests()).length;
  for (const [field, value, wire] of [
    ['crmEntityType', new String('deal'), 'CRM_ENTITY_TYPE'],
    ['crmEntity', new Number(288), 'CRM_ENTITY'],
    ['message', new String('Hi'), 'MESSAGE'],
    ['chatId', new Number(8773), 'CHAT_ID'],
  ]) {
    const e = await rejectionOf(client.crmMessageAdd({ ...seed, [field]: value }));
    assert.equal(e.code, 'ERROR_ARGUMENT', `${field}: ${e.message}`);
    assert.equal(e.argument, wire);
  }
  const e = await rejectionOf(client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288, activeOnly: new Boolean(true) }));
  assert.equal(e.code, 'ERROR_ARGUMENT', e.message);
  assert.equal((await ctx.portal.requests()).length, before, 'nothing was sent');
});
