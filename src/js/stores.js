// OAuth token stores: where an app keeps its tokens, so that all who use them (calls in
// flight, other tabs, other processes) refresh once and never lose a refresh token
// (Bitrix24's are single use). A store is `{ get(), set(next, previous), lock(name, fn) }`:
//   get()                resolves to `{ accessToken, refreshToken?, expiresAt? }` (expiresAt:
//                        milliseconds since the epoch), or undefined when the store is empty;
//   set(next, previous)  compare-and-set: writes `next` (null empties the store) only if
//                        the store still holds `previous` (the same accessToken and
//                        refreshToken; an empty store matches null or undefined); resolves
//                        to true if it wrote, false if another user saved meanwhile;
//   lock(name, fn)       runs `fn()` holding the exclusive lock `name` of the store, shared
//                        by all its users; settles as fn does, the lock released first.
// Constructors throw a TypeError for wrong arguments; methods reject with one.
//
// Browser-safe: no Node module, nothing read at import time. The Node-only file store
// (node.js, `b24-openlines/node`) shares the helpers exported here besides the stores.

/** Whether `v` holds tokens: a non-empty string accessToken, optional string refreshToken
 * and finite number expiresAt (null counts as absent). */
export const isTokens = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
  && typeof v.accessToken === 'string' && v.accessToken !== ''
  && (v.refreshToken == null || typeof v.refreshToken === 'string')
  && (v.expiresAt == null || Number.isFinite(v.expiresAt));

/** Whether `current` (undefined or null when empty) still holds `previous`. */
export const sameTokens = (current, previous) => (current == null
  ? previous == null
  : previous != null && current.accessToken === previous.accessToken
    && (current.refreshToken ?? null) === (previous.refreshToken ?? null));

/** A copy of stored tokens as JSON keeps them; undefined for empty. */
export const copyTokens = (v) => (v == null ? undefined : JSON.parse(JSON.stringify(v)));

/** Checks the arguments of `set`: throws a TypeError naming `where` for wrong ones. */
export function checkSet(where, next, previous) {
  if (next !== null && !isTokens(next)) {
    throw new TypeError(`${where}.set: next must be null or { accessToken: non-empty string, refreshToken?: string, expiresAt?: number }`);
  }
  if (previous != null && (typeof previous !== 'object' || Array.isArray(previous))) {
    throw new TypeError(`${where}.set: previous must be the tokens read before, or null`);
  }
}

/** Checks the arguments of `lock`: throws a TypeError naming `where` for wrong ones. */
export function checkLock(where, name, fn) {
  if (typeof name !== 'string' || name === '') throw new TypeError(`${where}.lock: name must be a non-empty string`);
  if (typeof fn !== 'function') throw new TypeError(`${where}.lock: fn must be a function`);
}

/** An in-process lock: `(name, fn)` runs `fn()` once every earlier call with that name
 * has settled (first come, first served), and settles as it does. */
export function lockQueue() {
  const tails = new Map();
  return (name, fn) => {
    const run = (tails.get(name) ?? Promise.resolve()).then(() => fn());
    const tail = run.then(() => {}, () => {});
    tails.set(name, tail);
    tail.then(() => {
      if (tails.get(name) === tail) tails.delete(name);
    });
    return run;
  };
}

/** A store in this process's memory, starting with `initial` (tokens, or nothing); for
 * one process (a server, a script) or tests. Its lock is an in-process queue per name. */
export function memoryTokenStore(initial) {
  if (initial != null && !isTokens(initial)) {
    throw new TypeError('memoryTokenStore: initial must be { accessToken: non-empty string, refreshToken?: string, expiresAt?: number } or nothing');
  }
  let value = copyTokens(initial);
  const queue = lockQueue();
  return {
    async get() {
      return copyTokens(value);
    },
    async set(next, previous) {
      checkSet('memoryTokenStore', next, previous);
      if (!sameTokens(value, previous)) return false;
      value = copyTokens(next);
      return true;
    },
    async lock(name, fn) {
      checkLock('memoryTokenStore', name, fn);
      return queue(name, fn);
    },
  };
}

/** The in-process locks of web storage stores, shared by the stores of one key. */
const webQueue = lockQueue();
/** Writes made by web storage stores in this page, by key. */
const webWrites = new Map();

/** A store in Web Storage (`localStorage` by default, or any `{ getItem, setItem,
 * removeItem }`): the tokens as JSON under `key`, shared by the tabs of one origin.
 * Throws a TypeError when no storage is passed and there is none to default to (Node; a
 * browser that blocks storage, as in a sandboxed frame). A value under `key` that is not
 * tokens makes `get` and `set` reject.
 *
 * Its lock is a Web Lock (`navigator.locks`), held across the tabs. Where there is none
 * (Node 18 and 20, an insecure http: page, an old browser) it falls back to an
 * in-process queue, exclusive within this page or process only.
 *
 * `set` compares and writes in one synchronous step, atomic within a tab; across tabs,
 * call it under `lock` (Web Storage has no transactions). Each tab reads its own copy of
 * the storage, which the browser updates a moment after another tab writes, so a Web
 * Lock under which tokens were written is held 20 ms longer, for the next tab to take it
 * to read them (Chromium delivers them within a millisecond; no browser promises a
 * bound, and `set` still never overwrites what it has not read). */
export function webStorageTokenStore(key, storage = defaultStorage()) {
  if (typeof key !== 'string' || key === '') throw new TypeError('webStorageTokenStore: key must be a non-empty string');
  if (storage === null || typeof storage !== 'object'
    || !['getItem', 'setItem', 'removeItem'].every((m) => typeof storage[m] === 'function')) {
    throw new TypeError('webStorageTokenStore: storage must be a Storage ({ getItem, setItem, removeItem }); there is no localStorage here to default to');
  }
  const read = () => {
    const text = storage.getItem(key);
    if (text == null) return undefined;
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      // Not JSON: reported below.
    }
    if (!isTokens(value)) throw new Error(`webStorageTokenStore: the value under ${JSON.stringify(key)} is not a token store (not JSON tokens)`);
    return value;
  };
  const prefix = `b24-openlines ${JSON.stringify(key)} `;
  return {
    async get() {
      return read();
    },
    async set(next, previous) {
      checkSet('webStorageTokenStore', next, previous);
      if (!sameTokens(read(), previous)) return false;
      if (next === null) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(next));
      webWrites.set(key, (webWrites.get(key) ?? 0) + 1);
      return true;
    },
    async lock(name, fn) {
      checkLock('webStorageTokenStore', name, fn);
      // The key is part of the name: stores of other keys do not wait for this one, and
      // no name starts with '-' (reserved by Web Locks).
      const locks = globalThis.navigator?.locks;
      if (typeof locks?.request !== 'function') return webQueue(prefix + name, fn);
      return locks.request(prefix + name, async () => {
        const writes = webWrites.get(key);
        try {
          return await fn();
        } finally {
          if (webWrites.get(key) !== writes) await new Promise((r) => setTimeout(r, 20));
        }
      });
    },
  };
}

/** `localStorage` if this runtime has one that can be read; undefined otherwise (Node; a
 * browser that throws on access, as in a sandboxed frame or with storage blocked). */
function defaultStorage() {
  try {
    return globalThis.localStorage ?? undefined;
  } catch {
    return undefined;
  }
}
