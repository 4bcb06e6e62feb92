// Nothing a caller passes can break the module: every hostile input below, repeated
// 10,000 times in one module, gets a rejected Promise with a Bitrix24Error (never a
// synchronous throw, never a crash), sends nothing, and a normal call still succeeds
// afterwards. A JS exception unwinding through wasm frames would leak the wasm stack
// on each repeat and kill the module long before the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, crmMessageAdd, sendToCrmItem, isBitrix24Error, Bitrix24Error } from 'b24-openlines';
import { seed, usePortal } from './portal.mjs';

const ctx = usePortal();
const REPEATS = Number(process.env.B24_HOSTILE_REPEATS ?? 10_000);

const revoked = () => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy; };
const trapAll = (target = {}) => new Proxy(target, Object.fromEntries(
  ['get', 'has', 'ownKeys', 'getPrototypeOf', 'getOwnPropertyDescriptor', 'set', 'defineProperty', 'apply']
    .map((t) => [t, () => { throw new Error(`trap ${t}`); }])));
const throwingGetters = (keys) => Object.defineProperties({}, Object.fromEntries(
  keys.map((k) => [k, { get() { throw new Error(`getter ${k}`); }, enumerable: true }])));
const cyclic = () => { const o = { crmEntityType: 'deal' }; o.crmEntity = o; o.message = o; return o; };
const huge = 'x'.repeat(100_000);
const abortedFake = Object.create(AbortSignal.prototype);

/** Every hostile input: a name and a function making the call (given the portal). */
function hostileCalls(portal) {
  const webhookUrl = portal.webhook;
  const hook = { webhookUrl };
  const client = Client.fromWebhook(webhookUrl);
  const params = [
    ['revoked proxy', revoked()],
    ['trapping proxy', trapAll()],
    ['throwing getters', throwingGetters(['crmEntityType', 'crmEntity', 'userId', 'chatId', 'message'])],
    ['cyclic object', cyclic()],
    ['symbol', Symbol('p')],
    ['symbol field', { ...seed, message: Symbol('m') }],
    ['bigint', 10n],
    ['bigint field', { ...seed, crmEntity: 288n }],
    ['NaN id', { ...seed, chatId: NaN }],
    ['Infinity id', { ...seed, userId: Infinity }],
    ['-Infinity id', { ...seed, crmEntity: -Infinity }],
    ['huge type string', { ...seed, crmEntityType: huge }],
    ['huge id string', { ...seed, chatId: huge }],
    ['function', () => seed],
    ['array', [seed]],
    ['proxy of an array', trapAll([])],
  ];
  // Options of any call: their shape, the signal and the timeout.
  const callOptions = [
    ['revoked options', revoked()],
    ['trapping options', trapAll()],
    ['throwing getters options', throwingGetters(['webhookUrl', 'client', 'accessToken', 'signal', 'timeoutMs'])],
    ['symbol options', Symbol('o')],
    ['number options', 42],
    ['fake signal', { ...hook, signal: {} }],
    ['prototype-only signal', { ...hook, signal: abortedFake }],
    ['revoked signal', { ...hook, signal: revoked() }],
    ['negative timeout', { ...hook, timeoutMs: -1 }],
    ['zero timeout', { ...hook, timeoutMs: 0 }],
    ['NaN timeout', { ...hook, timeoutMs: NaN }],
    ['Infinity timeout', { ...hook, timeoutMs: Infinity }],
    ['string timeout', { ...hook, timeoutMs: '100' }],
    ['huge timeout', { ...hook, timeoutMs: 1e20 }],
    ['fractional timeout', { ...hook, timeoutMs: 1.5 }],
    ['bigint timeout', { ...hook, timeoutMs: 100n }],
  ];
  // The free function's auth options.
  const authOptions = [
    ['symbol webhook', { webhookUrl: Symbol('w') }],
    ['proxy webhook', { webhookUrl: revoked() }],
    ['user-info webhook', { webhookUrl: webhookUrl.replace('http://', 'http://bob:pw@') }],
    ['remote http webhook', { webhookUrl: 'http://portal.example/rest/1/secret/' }],
    ['huge webhook', { webhookUrl: huge }],
    ['token without portal', { accessToken: 't' }],
    ['token with revoked refresh', { accessToken: 't', domain: 'p.example', refresh: revoked() }],
    ['fake client', { client: { crmMessageAdd: () => { throw new Error('x'); } } }],
    ['revoked client', { client: revoked() }],
    ['throwing bx24', { bx24: { init() { throw new Error('init'); } } }],
    ['revoked bx24', { bx24: revoked() }],
    ['bx24 with trapping getAuth', { bx24: { init: (cb) => cb(), getAuth: trapAll(() => 0) } }],
  ];
  const calls = [];
  for (const [name, p] of params) {
    calls.push([`crmMessageAdd(${name})`, () => crmMessageAdd(p, hook)]);
    calls.push([`client.crmMessageAdd(${name})`, () => client.crmMessageAdd(p)]);
  }
  // call() sends any JSON object: only what JSON cannot hold is refused.
  const notJson = new Set(['revoked proxy', 'trapping proxy', 'throwing getters', 'cyclic object', 'symbol', 'bigint',
    'bigint field', 'function', 'array', 'proxy of an array']);
  for (const [name, p] of params.filter(([n]) => notJson.has(n))) {
    calls.push([`client.call(m, ${name})`, () => client.call('crm.lead.add', p)]);
  }
  // Valid params: only the options stand between these calls and the portal.
  for (const [name, o] of [...callOptions, ...authOptions]) {
    calls.push([`crmMessageAdd(seed, ${name})`, () => crmMessageAdd(seed, o)]);
  }
  for (const [name, o] of callOptions) {
    calls.push([`client.crmMessageAdd(seed, ${name})`, () => client.crmMessageAdd(seed, o)]);
    calls.push([`client.call(profile, {}, ${name})`, () => client.call('profile', {}, o)]);
  }
  // A message to a CRM item: the same params and options, and its list form.
  const item = { crmEntityType: 'deal', crmEntity: 288, message: 'x' };
  for (const [name, p] of params) {
    calls.push([`sendToCrmItem(${name})`, () => sendToCrmItem(p, hook)]);
    calls.push([`client.sendToCrmItem(${name})`, () => client.sendToCrmItem(p)]);
  }
  for (const [name, o] of [...callOptions, ...authOptions]) {
    calls.push([`sendToCrmItem(item, ${name})`, () => sendToCrmItem(item, o)]);
  }
  for (const [name, o] of callOptions) {
    calls.push([`client.sendToCrmItems([item], ${name})`, () => client.sendToCrmItems([item], o)]);
  }
  calls.push(['sendToCrmItem(item, {join: symbol})', () => client.sendToCrmItem(item, { join: Symbol('j') })]);
  calls.push(['sendToCrmItems(revoked list)', () => client.sendToCrmItems(revoked())]);
  calls.push(['sendToCrmItems(trapping list)', () => client.sendToCrmItems(trapAll([]))]);
  calls.push(['call(symbol method)', () => client.call(Symbol('m'))]);
  calls.push(['call(revoked method)', () => client.call(revoked())]);
  calls.push(['call(toJSON throws)', () => client.call('crm.lead.add', { toJSON() { throw new Error('j'); } })]);
  calls.push(['fromWebhook(revoked)', () => Client.fromWebhook(revoked()).crmChatGet({ ...seed, crmEntity: 0 })]);
  calls.push(['fromToken(revoked)', () => Client.fromToken(revoked(), revoked()).crmChatGet({ ...seed, crmEntity: 0 })]);
  calls.push(['fromBx24(revoked)', () => Client.fromBx24(revoked())]);
  calls.push(['new Client()', () => new Client().crmMessageAdd(seed)]);
  calls.push(['method on a revoked proxy', () => Client.prototype.crmMessageAdd.call(revoked(), seed)]);
  calls.push(['method on a plain object', () => Client.prototype.crmChatGet.call({}, seed)]);
  calls.push(['setTitle(symbol)', () => client.setTitle(Symbol('t'))]);
  const freed = Client.fromWebhook(webhookUrl);
  freed.free();
  calls.push(['freed client', () => freed.crmMessageAdd(seed)]);
  return calls;
}

test(`${REPEATS} repeats of every hostile input reject cleanly, send nothing, and leave the module working`, { timeout: 600_000 }, async () => {
  const { portal } = ctx;
  const calls = hostileCalls(portal);
  const requestsBefore = (await portal.requests()).length;
  const codes = new Map();
  for (let round = 0; round < REPEATS; round++) {
    const pending = calls.map(([name, f]) => {
      let p;
      try {
        p = f();
      } catch (e) {
        assert.fail(`${name} threw synchronously: ${e}`);
      }
      assert.ok(p instanceof Promise, `${name} returns a Promise`);
      return p.then(
        (v) => assert.fail(`${name} resolved with ${v}`),
        (e) => {
          if (round === 0) {
            assert.ok(isBitrix24Error(e) && e instanceof Bitrix24Error && e instanceof Error, `${name}: ${e}`);
            assert.notEqual(e.code, 'INTERNAL_ERROR', `${name}: ${e.message}`);
            assert.equal(e.outcome, 'notExecuted', `${name}: nothing was sent (${e.message})`);
            codes.set(name, e.code);
          }
        });
    });
    await Promise.all(pending);
  }
  assert.equal((await portal.requests()).length, requestsBefore, 'no hostile call reached the portal');
  // The same module, new and old clients alike, still works.
  const id = await crmMessageAdd(seed, { webhookUrl: portal.webhook });
  assert.ok(Number.isInteger(id) && id > 0);
  const fresh = Client.fromWebhook(portal.webhook);
  assert.ok((await fresh.crmMessageAdd({ ...seed, message: 'after the storm' })) > id);
  const summary = [...codes].map(([n, c]) => `${c.padEnd(16)} ${n}`).join('\n');
  console.log(`# hostile inputs: ${calls.length} kinds x ${REPEATS} = ${calls.length * REPEATS} calls\n${summary}`);
  assert.ok(calls.length >= 100, `${calls.length} kinds of hostile call`);
});

test('isBitrix24Error never throws and is false for look-alikes', () => {
  for (const v of [revoked(), trapAll(), trapAll(new Error('x')), null, undefined, 1, 'Bitrix24Error',
    Object.assign(new Error('x'), { name: 'Bitrix24Error' }), { name: 'Bitrix24Error', code: 'X' }]) {
    assert.equal(isBitrix24Error(v), false);
  }
});

test('a freed client and new Client() reject with NO_AUTH, not a pointer error', async () => {
  const c = Client.fromWebhook(ctx.portal.webhook);
  assert.ok((await c.crmMessageAdd({ ...seed, message: 'before free' })) > 0);
  c.free();
  c.free();
  for (const p of [c.crmMessageAdd(seed), c.call('profile'), new Client().crmChatGet({ crmEntityType: 'deal', crmEntity: 288 })]) {
    const e = await p.then(() => assert.fail('resolved'), (err) => err);
    assert.ok(isBitrix24Error(e), String(e));
    assert.equal(e.code, 'NO_AUTH');
    assert.doesNotMatch(e.message, /pointer|borrowed|ownership/);
  }
});
