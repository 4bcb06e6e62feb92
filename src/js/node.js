// The Node-only entry, `b24-openlines/node`: `fileTokenStore`, a token store in a file
// shared by processes (see stores.js for what a store is). Kept out of the main entries
// so that no browser bundle sees node:fs.
import { createHash } from 'node:crypto';
import { readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { checkLock, checkSet, copyTokens, isTokens, lockQueue, sameTokens } from './stores.js';

/** Lock files held in this process, by path: its callers queue here, not at the file. */
const local = lockQueue();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Rethrows all but "no such file". */
const gone = (e) => {
  if (e?.code !== 'ENOENT') throw e;
};

/** A store in the JSON file at `path`, for the processes of one machine: a server's
 * workers, cron jobs, CLI runs. `get` reads it (undefined when there is no file; rejects
 * with an Error when the file holds no tokens), `set` writes a temporary file in the
 * same directory and renames it over `path` (a reader never sees half a file; `null`
 * deletes the file), its compare and write under a lock file `${path}.write.lock`.
 *
 * `lock(name, fn)` holds the lock file of `name`, `${path}.<12 hex digits of the name's
 * SHA-256>.lock`, created exclusively (flag 'wx') with the holder's pid and time in it,
 * and retried every 10–25 ms until it can be: each name is its own lock, as with Web
 * Locks, so a holder of one may take another. A lock file older than `staleMs` (by its mtime) is
 * taken as left by a holder that crashed, and removed: so a holder must finish within
 * `staleMs` (30 s by default), or another process may take the lock too. */
export function fileTokenStore(path, { staleMs = 30000 } = {}) {
  if (typeof path !== 'string' || path === '') throw new TypeError('fileTokenStore: path must be a non-empty string');
  if (typeof staleMs !== 'number' || !(staleMs > 0)) {
    throw new TypeError('fileTokenStore: staleMs must be a positive number of milliseconds');
  }
  const file = resolve(path);
  const read = async () => {
    let text;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if (e?.code === 'ENOENT') return undefined;
      throw e;
    }
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      // Not JSON: reported below.
    }
    if (!isTokens(value)) throw new Error(`fileTokenStore: ${file} is not a token store (not JSON tokens)`);
    return value;
  };
  const write = async (next) => {
    if (next === null) return unlink(file).catch(gone);
    const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await writeFile(temp, JSON.stringify(next));
      await rename(temp, file);
    } catch (e) {
      await unlink(temp).catch(() => {});
      throw e;
    }
  };
  return {
    get: read,
    async set(next, previous) {
      checkSet('fileTokenStore', next, previous);
      next = copyTokens(next) ?? null;
      return withLockFile(`${file}.write.lock`, staleMs, async () => {
        if (!sameTokens(await read(), previous)) return false;
        await write(next);
        return true;
      });
    },
    async lock(name, fn) {
      checkLock('fileTokenStore', name, fn);
      return withLockFile(lockFileOf(file, name), staleMs, fn);
    },
  };
}

/** The lock file of lock `name` of the store in `file`. */
function lockFileOf(file, name) {
  return `${file}.${createHash('sha256').update(name).digest('hex').slice(0, 12)}.lock`;
}

/** Runs `fn()` holding the lock file `lock` (after this process's earlier holders), and
 * removes it when fn settles. */
function withLockFile(lock, staleMs, fn) {
  return local(lock, async () => {
    const mine = JSON.stringify({ pid: process.pid, time: new Date().toISOString(), id: Math.random() });
    await acquire(lock, mine, staleMs);
    try {
      return await fn();
    } finally {
      // Ours still (not broken as stale and taken since): remove it.
      const now = await readFile(lock, 'utf8').catch((e) => gone(e));
      if (now === mine) await unlink(lock).catch(gone);
    }
  });
}

/** Creates `lock` holding `mine`, waiting while another holds it and removing it when stale. */
async function acquire(lock, mine, staleMs) {
  for (;;) {
    try {
      await writeFile(lock, mine, { flag: 'wx' });
      return;
    } catch (e) {
      if (e?.code !== 'EEXIST') throw e;
    }
    if (await isStale(lock, staleMs)) await breakStale(lock, staleMs);
    else await sleep(10 + Math.random() * 15);
  }
}

/** Whether `file` exists and was last written more than `staleMs` ago. */
async function isStale(file, staleMs) {
  try {
    return Date.now() - (await stat(file)).mtimeMs > staleMs;
  } catch (e) {
    gone(e);
    return false;
  }
}

/** Removes a stale `lock`. Waiters that saw it stale take turns through `${lock}.break`
 * and check it again, so that none removes the fresh lock another took meanwhile. */
async function breakStale(lock, staleMs) {
  const breaker = `${lock}.break`;
  try {
    await writeFile(breaker, String(process.pid), { flag: 'wx' });
  } catch (e) {
    if (e?.code !== 'EEXIST') throw e;
    // Another waiter is at it; a breaker left by a crash is stale in turn.
    if (await isStale(breaker, staleMs)) await unlink(breaker).catch(gone);
    return sleep(10 + Math.random() * 15);
  }
  try {
    if (await isStale(lock, staleMs)) await unlink(lock).catch(gone);
  } finally {
    await unlink(breaker).catch(gone);
  }
}
