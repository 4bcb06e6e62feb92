// Starts the local portal for a test file and talks to its admin API.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { before, after } from 'node:test';

/** The reference page's example: deal 288, sender 12, open-line chat 8773 (seeded). */
export const seed = Object.freeze({ crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'Hello' });

/** Path of the portal binary: B24_PORTAL_BIN, set by the test script. */
export const portalBin = process.env.B24_PORTAL_BIN;

/**
 * Starts a portal on a free loopback port. Resolves to
 * { url, webhook, accessToken, secret, admin(path, body?), messages(), requests(), stop() }.
 */
export async function startPortal(args = []) {
  if (!portalBin) throw new Error('B24_PORTAL_BIN is not set (run the tests through scripts/test.sh)');
  const child = spawn(portalBin, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the portal did not start within 20 s')), 20_000);
    lines.once('line', (line) => { clearTimeout(timer); resolve(line); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the portal exited with ${code}`)); });
  });
  const info = JSON.parse(first);
  const secret = new URL(info.webhook).pathname.split('/').filter(Boolean)[2];
  const admin = async (path, body, method) => {
    const res = await fetch(`${info.url}/_portal/${path}`, {
      method: method ?? (body === undefined ? 'GET' : 'POST'),
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`admin ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    ...info,
    secret,
    admin,
    messages: () => admin('messages'),
    requests: () => admin('requests'),
    faults: (faults) => admin('faults', { faults }),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

/** Resolves to the rejection of `promise`, failing if it resolves. */
export async function rejectionOf(promise) {
  let value;
  try {
    value = await promise;
  } catch (e) {
    return e;
  }
  throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
}

/**
 * Starts a portal before the file's tests and stops it after them. Returns an object
 * whose `portal` is set once started; `setup(portal)` may derive more state.
 */
export function usePortal(setup = () => ({})) {
  const ctx = {};
  before(async () => {
    ctx.portal = await startPortal();
    Object.assign(ctx, await setup(ctx.portal));
  });
  after(async () => { await ctx.portal?.stop(); });
  return ctx;
}
