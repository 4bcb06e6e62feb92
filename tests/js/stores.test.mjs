// The token stores, as an app uses them: memoryTokenStore and webStorageTokenStore from
// the main entry, fileTokenStore from 'b24-openlines/node'. Each is a compare-and-set
// store with an exclusive lock; the file store's lock and compare-and-set hold across
// processes (child Node processes, ESM and CommonJS), the web storage store's across
// tabs (two tabs of headless Chromium, Web Locks).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryTokenStore, webStorageTokenStore } from 'b24-openlines';
import { fileTokenStore } from 'b24-openlines/node';
import { rejectionOf } from './portal.mjs';

const require = createRequire(import.meta.url);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dir = await mkdtemp(join(tmpdir(), 'b24-stores-'));
after(() => rm(dir, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(dir, `tokens-${++files}.json`);

/** A Storage-like object in memory, as `localStorage` would be. */
function memoryStorage() {
  const map = new Map();
  return {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, String(v)),
    removeItem: (k) => void map.delete(k),
  };
}

/** The lock file of lock `name` of the file store at `file`, as fileTokenStore documents it. */
const lockFile = (file, name) => `${file}.${createHash('sha256').update(name).digest('hex').slice(0, 12)}.lock`;

/** Settles as `promise`, or rejects if it takes longer than `ms` (a lock never released). */
const within = (promise, ms = 5000) => Promise.race([promise,
  sleep(ms).then(() => { throw new Error(`not settled within ${ms} ms`); })]);

const stores = {
  memoryTokenStore: () => memoryTokenStore(),
  webStorageTokenStore: () => webStorageTokenStore('b24-tokens', memoryStorage()),
  fileTokenStore: () => fileTokenStore(freshFile()),
};

for (const [kind, make] of Object.entries(stores)) {
  test(`${kind}: get, and set as a compare-and-set`, async () => {
    const store = make();
    assert.equal(await store.get() ?? undefined, undefined, 'empty at first');
    const first = { accessToken: 'a1', refreshToken: 'r1', expiresAt: Date.now() + 3600_000 };
    assert.equal(await store.set(first, null), true, 'an empty store matches previous = null');
    assert.deepEqual(await store.get(), first);
    assert.equal(await store.set({ accessToken: 'x' }, undefined), false, 'a full store does not match previous = undefined');

    // Another user refreshed meanwhile: a set from the old tokens does not overwrite.
    const second = { accessToken: 'a2', refreshToken: 'r2' };
    assert.equal(await store.set(second, first), true);
    assert.equal(await store.set({ accessToken: 'a3', refreshToken: 'r3' }, first), false, 'stale previous');
    assert.equal(await store.set({ accessToken: 'a3' }, { accessToken: 'a2', refreshToken: 'other' }), false, 'refreshToken compared');
    assert.equal(await store.set({ accessToken: 'a3' }, { accessToken: 'other', refreshToken: 'r2' }), false, 'accessToken compared');
    assert.deepEqual(await store.get(), second);

    // What get returns is a copy: changing it changes nothing stored.
    const read = await store.get();
    read.accessToken = 'changed';
    assert.deepEqual(await store.get(), second);

    // null empties the store.
    assert.equal(await store.set(null, second), true);
    assert.equal(await store.get() ?? undefined, undefined);
  });

  test(`${kind}: lock is exclusive per name, settles as fn, and is released after fn throws`, async () => {
    const store = make();
    const events = [];
    const hold = (tag, ms) => async () => {
      events.push(`enter ${tag}`);
      await sleep(ms);
      events.push(`exit ${tag}`);
      return tag;
    };
    const results = await within(Promise.all([
      store.lock('refresh', hold('a', 40)), store.lock('refresh', hold('b', 10)), store.lock('refresh', hold('c', 1)),
    ]));
    assert.deepEqual(results, ['a', 'b', 'c']);
    assert.equal(events.length, 6);
    for (let i = 0; i < events.length; i += 2) {
      assert.equal(events[i + 1], events[i].replace('enter', 'exit'), `no overlap: ${events.join(', ')}`);
    }

    const boom = new Error('boom');
    assert.equal(await rejectionOf(within(store.lock('refresh', async () => { throw boom; }))), boom);
    assert.equal(await rejectionOf(within(store.lock('refresh', () => { throw boom; }))), boom, 'a synchronous throw');
    assert.equal(await within(store.lock('refresh', async () => 'free again')), 'free again');
    assert.equal(await within(store.lock('refresh', () => 7)), 7, 'fn may return a plain value');
  });

  test(`${kind}: wrong arguments of set and lock reject with a TypeError`, async () => {
    const store = make();
    for (const next of [undefined, 'a1', {}, { accessToken: '' }, { accessToken: 'a', expiresAt: 'soon' }, [{ accessToken: 'a' }]]) {
      assert.ok(await rejectionOf(store.set(next, null)) instanceof TypeError, JSON.stringify(next));
    }
    assert.ok(await rejectionOf(store.set({ accessToken: 'a' }, 'a')) instanceof TypeError);
    assert.ok(await rejectionOf(store.lock('', async () => {})) instanceof TypeError);
    assert.ok(await rejectionOf(store.lock('refresh', 'not a function')) instanceof TypeError);
    assert.equal(await store.get() ?? undefined, undefined, 'nothing written');
  });
}

test('constructors throw a TypeError for wrong arguments', () => {
  assert.throws(() => memoryTokenStore('token'), TypeError);
  assert.throws(() => memoryTokenStore({ refreshToken: 'r' }), TypeError);
  assert.throws(() => webStorageTokenStore(42, memoryStorage()), TypeError);
  assert.throws(() => webStorageTokenStore('', memoryStorage()), TypeError);
  assert.throws(() => webStorageTokenStore('k', {}), TypeError);
  assert.throws(() => fileTokenStore(42), TypeError);
  assert.throws(() => fileTokenStore(freshFile(), { staleMs: -1 }), TypeError);
  assert.throws(() => fileTokenStore(freshFile(), { staleMs: '30s' }), TypeError);
});

test('memoryTokenStore starts with its initial tokens', async () => {
  const initial = { accessToken: 'a0', refreshToken: 'r0' };
  const store = memoryTokenStore(initial);
  assert.deepEqual(await store.get(), initial);
  initial.accessToken = 'changed by the caller';
  assert.deepEqual(await store.get(), { accessToken: 'a0', refreshToken: 'r0' });
});

test('webStorageTokenStore: no localStorage in Node is a TypeError at construction, not at import', () => {
  if (globalThis.localStorage !== undefined) return; // a runtime with Web Storage
  assert.throws(() => webStorageTokenStore('b24-tokens'), (e) => e instanceof TypeError && /storage/.test(e.message));
});

test('webStorageTokenStore keeps JSON under its key, shared by stores of that key', async () => {
  const storage = memoryStorage();
  const one = webStorageTokenStore('k', storage);
  const two = webStorageTokenStore('k', storage);
  assert.equal(await one.set({ accessToken: 'a1', refreshToken: 'r1' }, null), true);
  assert.deepEqual(JSON.parse(storage.getItem('k')), { accessToken: 'a1', refreshToken: 'r1' });
  assert.equal(await two.set({ accessToken: 'a2' }, null), false, 'the other store sees the saved tokens');
  assert.equal(await webStorageTokenStore('other', storage).get() ?? undefined, undefined);
  storage.setItem('k', 'not json');
  assert.match((await rejectionOf(one.get())).message, /not a token store/);
});

test('CommonJS: require gives the same stores, and the file format is shared', async () => {
  const main = require('b24-openlines');
  assert.equal(typeof main.memoryTokenStore, 'function');
  assert.equal(typeof main.webStorageTokenStore, 'function');
  const { fileTokenStore: cjsFileTokenStore } = require('b24-openlines/node');
  const file = freshFile();
  assert.equal(await cjsFileTokenStore(file).set({ accessToken: 'from cjs' }, null), true);
  assert.deepEqual(await fileTokenStore(file).get(), { accessToken: 'from cjs' });
  assert.equal(await main.memoryTokenStore({ accessToken: 'a' }).set({ accessToken: 'b' }, { accessToken: 'a' }), true);
});

test('fileTokenStore: writes whole JSON files and leaves no temporary or lock file behind', async () => {
  const file = freshFile();
  const store = fileTokenStore(file);
  await store.set({ accessToken: 'a1', refreshToken: 'r1', expiresAt: 1 }, null);
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { accessToken: 'a1', refreshToken: 'r1', expiresAt: 1 });
  await store.lock('refresh', async () => {
    assert.ok((await stat(lockFile(file, 'refresh'))).isFile(), 'the lock file exists while held');
  });
  const { readdir } = await import('node:fs/promises');
  const base = file.slice(dir.length + 1);
  assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith(base)), [base]);
});

test('fileTokenStore: each lock name is its own lock file: a holder of one may take another, as with Web Locks', async () => {
  const file = freshFile();
  const store = fileTokenStore(file);
  const inner = await within(store.lock('refresh', async () => {
    assert.ok((await stat(lockFile(file, 'refresh'))).isFile());
    return store.lock('b24-openlines refresh https://portal.example', async () => {
      assert.ok((await stat(lockFile(file, 'b24-openlines refresh https://portal.example'))).isFile());
      return 'both held';
    });
  }));
  assert.equal(inner, 'both held');
  // The same name stays exclusive: a second taker waits for the first.
  const order = [];
  await within(Promise.all([
    store.lock('refresh', async () => { order.push('a in'); await sleep(30); order.push('a out'); }),
    store.lock('refresh', async () => { order.push('b in'); }),
  ]));
  assert.deepEqual(order, ['a in', 'a out', 'b in']);
});

test('fileTokenStore: a file that holds no tokens rejects with a clear Error', async () => {
  for (const text of ['{"accessToken": "a1", "refre', '', '[1, 2]', '{"token": "a1"}']) {
    const file = freshFile();
    await writeFile(file, text);
    const store = fileTokenStore(file);
    const e = await rejectionOf(store.get());
    assert.ok(e instanceof Error);
    assert.match(e.message, /is not a token store/);
    assert.ok(e.message.includes(file), 'names the file');
    assert.match((await rejectionOf(store.set({ accessToken: 'a' }, null))).message, /is not a token store/);
    assert.equal(await readFile(file, 'utf8'), text, 'left as it was');
  }
});

test('fileTokenStore: a lock file held by another waits; a stale one (its holder crashed) is broken', async () => {
  const file = freshFile();
  const store = fileTokenStore(file);
  const held = lockFile(file, 'refresh');

  // A live holder: lock waits until its file is gone.
  await writeFile(held, JSON.stringify({ pid: 1, time: new Date().toISOString() }));
  let entered = false;
  const waiting = store.lock('refresh', async () => { entered = true; });
  await sleep(150);
  assert.equal(entered, false, 'waits for the holder');
  await rm(held);
  await within(waiting);
  assert.equal(entered, true);

  // A crashed holder: its lock file, 60 s old, is older than staleMs (30 s) and removed.
  await writeFile(held, JSON.stringify({ pid: 1, time: new Date(Date.now() - 60_000).toISOString() }));
  const past = new Date(Date.now() - 60_000);
  await utimes(held, past, past);
  assert.equal(await within(store.lock('refresh', async () => 'taken'), 2000), 'taken');
  await assert.rejects(stat(held), { code: 'ENOENT' }, 'released');
  // The same with a short staleMs: a 60 s old lock file is stale for 1 s too.
  await writeFile(held, '');
  await utimes(held, past, past);
  assert.equal(await within(fileTokenStore(file, { staleMs: 1000 }).lock('refresh', async () => 'taken'), 2000), 'taken');
});

/** Runs `children` Node processes, each `rounds` increments of the counter in `file`,
 * through the ESM or CommonJS entry, under the lock or by compare-and-set retries. */
async function race(file, children, rounds, mode) {
  const script = join(dir, 'increment.mjs');
  await writeFile(script, `
import { createRequire } from 'node:module';
const [esm, cjs, file, rounds, mode, entry] = process.argv.slice(2);
const { fileTokenStore } = entry === 'cjs' ? createRequire(import.meta.url)(cjs) : await import(esm);
const store = fileTokenStore(file);
const count = (t) => (t ? Number(t.accessToken.slice('count-'.length)) : 0);
const next = (t) => ({ accessToken: 'count-' + (count(t) + 1), refreshToken: 'r' + (count(t) + 1) });
let retries = 0;
for (let i = 0; i < Number(rounds); i++) {
  if (mode === 'lock') {
    await store.lock('refresh', async () => {
      const now = await store.get();
      await new Promise((r) => setImmediate(r)); // a refresh takes time
      if (!(await store.set(next(now), now))) throw new Error('a compare-and-set failed under the lock');
    });
  } else {
    for (;;) {
      const now = await store.get();
      if (await store.set(next(now), now)) break;
      retries++;
    }
  }
}
console.log(JSON.stringify({ retries }));
`);
  const args = [import.meta.resolve('b24-openlines/node'), require.resolve('b24-openlines/node'), file, String(rounds), mode];
  const runs = Array.from({ length: children }, (_, i) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args, i % 2 ? 'cjs' : 'esm'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child ${i} exited with ${code}: ${out}`))));
  }));
  return Promise.all(runs);
}

test('fileTokenStore: 4 processes × 50 read-modify-write rounds under lock lose no update', async () => {
  const file = freshFile();
  // They start together at a stale lock file (a crash): one of them removes it, once.
  const held = lockFile(file, 'refresh');
  await writeFile(held, '');
  const past = new Date(Date.now() - 60_000);
  await utimes(held, past, past);
  await race(file, 4, 50, 'lock');
  assert.deepEqual(await fileTokenStore(file).get(), { accessToken: 'count-200', refreshToken: 'r200' });
  await assert.rejects(stat(held), { code: 'ENOENT' });
});

test('fileTokenStore: 4 processes × 50 compare-and-set retries without lock lose no update', async () => {
  const file = freshFile();
  const outs = await race(file, 4, 50, 'cas');
  assert.deepEqual(await fileTokenStore(file).get(), { accessToken: 'count-200', refreshToken: 'r200' });
  // Not an assertion of luck: reported so that a run shows the sets did contend.
  console.log(`compare-and-set retries: ${outs.map((o) => o.retries).join(', ')}`);
});

// Playwright exits on Node 18.
const oldNode = Number(process.versions.node.split('.')[0]) < 20 && 'Playwright needs Node 20';
test('webStorageTokenStore in Chromium: two tabs × 50 rounds under the Web Lock lose no update', { timeout: 60_000, skip: oldNode }, async (t) => {
  let browserTools;
  try {
    browserTools = await import('./browser.mjs');
    createRequire(`${process.env.B24_REPO_ROOT}/package.json`).resolve('playwright-core');
  } catch {
    return t.skip('no playwright-core (run with B24_REPO_ROOT set)');
  }
  const { serve, launchChromium } = browserTools;
  const page = `<!doctype html><meta charset="utf-8"><script type="module">
    import { webStorageTokenStore } from '/pkg/index.js';
    const store = webStorageTokenStore('b24-counter');
    const count = (t) => (t ? Number(t.accessToken.slice('count-'.length)) : 0);
    window.webLocks = typeof navigator.locks?.request === 'function';
    window.run = async (rounds) => {
      for (let i = 0; i < rounds; i++) {
        await store.lock('refresh', async () => {
          const now = await store.get();
          await new Promise((r) => setTimeout(r, 1));
          if (!(await store.set({ accessToken: 'count-' + (count(now) + 1) }, now))) throw new Error('a compare-and-set failed under the lock');
        });
      }
      return (await store.get()).accessToken;
    };
  </script>`;
  const site = await serve({ '/pkg/': new URL('../node_modules/b24-openlines/', import.meta.url), '/': page });
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const tabs = [await context.newPage(), await context.newPage()];
    for (const tab of tabs) {
      await tab.goto(`${site.origin}/`);
      await tab.waitForFunction(() => typeof window.run === 'function');
    }
    assert.equal(await tabs[0].evaluate(() => window.webLocks), true, 'Web Locks on a localhost page');
    await Promise.all(tabs.map((tab) => tab.evaluate((n) => window.run(n), 50)));
    assert.equal(await tabs[1].evaluate(() => JSON.parse(localStorage.getItem('b24-counter')).accessToken), 'count-100');
  } finally {
    await browser.close();
    site.close();
  }
});
