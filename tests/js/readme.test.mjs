// Every ```js and ```ts block of the README is a test, taken in order from the scratch
// project where the package is installed (the README is read from B24_REPO_ROOT):
//
// 1. Type-checked, all of them, exactly as written: each block is a `.mts` file of one
//    project checked by `tsc --noEmit` with `strict`, module and moduleResolution
//    `nodenext`, lib es2022 and Node's types (what a user pasting it into a Node
//    TypeScript project gets), on the repository's TypeScript (node_modules/.bin/tsc)
//    and, when installed, on TypeScript 5.0 (.tools/matrix). The one ambient
//    declaration is `BX24`, the global a page gets from BX24.js's script tag.
// 2. Run, one after another, each as a Node module (a ```ts block is first stripped of
//    its types by TypeScript's transpileModule) against the local portal, reset to its
//    seed before each block, within SNIPPET_TIMEOUT_MS, and must exit 0. What stands in
//    for a user's own portal, nothing else changed:
//    - the README's placeholder URLs, replaced in the code: the webhook
//      `https://portal.example/rest/1/secret/` by the portal's webhook (user 1), the REST
//      base `https://portal.bitrix24.com/rest/` by its client endpoint, the OAuth server
//      `https://oauth.bitrix.info/oauth/token/` by its token endpoint; after that a block
//      may hold no https URL in a string, so nothing run here leaves this machine;
//    - the environment variable B24_WEBHOOK_URL: the portal's webhook;
//    - the working directory: a fresh one per block, where SETUPS below may put files
//      (the token example's `b24-app.json` and `b24-tokens.json`).
//    CHECKS below assert what a block printed and did (messages in the portal's ledger,
//    requests made); each of them must match exactly one block.
//
// A block right after the comment `<!-- readme: typecheck-only -->` is type-checked but
// not run: only blocks that need a portal's iframe may carry it (`Client.fromFrame()`
// needs a portal page as its parent window, `Client.fromBx24(BX24)` BX24.js loaded inside
// one, which also tells the portal's scheme; Node has neither). What they call is tested
// elsewhere: fromFrame in Chromium inside the local portal's frame page (browser.test.mjs,
// frame.test.mjs), fromBx24 with a BX24-shaped object (bx24.test.mjs). Other blocks (sh,
// json, text) are not code to run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { usePortal } from './portal.mjs';

const run = promisify(execFile);
const root = process.env.B24_REPO_ROOT;
const SNIPPET_TIMEOUT_MS = 30_000;
const TYPECHECK_ONLY = '<!-- readme: typecheck-only -->';
const BROWSER_ONLY = /Client\.fromFrame\(|\bBX24\b/;

/** The README's code blocks: `{ n, line, lang, code, typecheckOnly }` (`line` 1-based,
 * fences indented inside a list item taken with their indent removed). */
function codeBlocks(text) {
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^( *)```(\w*)\s*$/);
    if (!open) continue;
    const [, indent, lang] = open;
    const end = lines.findIndex((l, j) => j > i && l.trimEnd() === `${indent}\`\`\``);
    assert.ok(end > i, `README.md:${i + 1}: the code block is not closed`);
    let before = i - 1;
    while (before >= 0 && lines[before].trim() === '') before--;
    blocks.push({
      line: i + 1,
      lang,
      code: `${lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l)).join('\n')}\n`,
      typecheckOnly: before >= 0 && lines[before].trim() === TYPECHECK_ONLY,
    });
    i = end;
  }
  return blocks.filter((b) => b.lang === 'js' || b.lang === 'ts').map((b, k) => ({ ...b, n: k + 1 }));
}

const readme = await readFile(`${root}/README.md`, 'utf8');
const blocks = codeBlocks(readme);
const name = (b) => `README.md:${b.line} (${b.lang} block ${b.n})`;
const file = (b) => `${String(b.n).padStart(2, '0')}-line${b.line}`;

const ctx = usePortal();
const dir = new URL('../readme/', import.meta.url); // in the scratch project, outside test/

/** Files a block's working directory gets before it runs, by a text the block holds. */
const SETUPS = [
  {
    // The token example reads its app's credentials from b24-app.json and the portal's
    // tokens from its store, b24-tokens.json. The access token is already expired, so the
    // example's own refresh function runs.
    holds: 'Client.fromToken(',
    async files(portal) {
      const { accessToken, refreshToken } = await portal.admin('tokens', { userId: 1, ttlSeconds: 0 });
      return {
        'b24-app.json': JSON.stringify({ clientId: portal.clientId, clientSecret: portal.clientSecret }),
        'b24-tokens.json': JSON.stringify({ accessToken, refreshToken, expiresAt: Date.now() - 1000 }),
      };
    },
  },
  {
    // 120 leads, three pages of `crm.lead.list`, for the list example.
    holds: "client.list('crm.lead.list'",
    async files(portal) {
      const crmItems = Array.from({ length: 119 }, (_, k) => ({ type: 'lead', id: 1001 + k, title: `Lead ${1001 + k}` }));
      await portal.admin('fixtures', { crmItems });
      return {};
    },
  },
];

/** What a block must have done, by a text the block holds: `check({ stdout, cwd, files, portal })`
 * (`files`: what SETUPS put in its working directory `cwd`). */
const CHECKS = [
  {
    holds: 'console.log(`message ${id} sent',
    async check({ stdout, portal }) {
      const id = Number(stdout.match(/message (\d+) sent to chat 8773/)?.[1]);
      assert.ok(id > 0, stdout);
      const entry = (await portal.messages()).find((m) => m.id === id);
      assert.equal(entry?.message, 'Hello');
      assert.equal(entry?.chatId, 8773);
    },
  },
  {
    holds: "crmEntity: 290, message: 'Your order has shipped', connectorId: 'telegrambot'",
    async check({ stdout, portal }) {
      const [entry, ...more] = await portal.messages();
      assert.deepEqual(more, []);
      assert.deepEqual([entry?.crmEntityType, entry?.crmEntity, entry?.chatId, entry?.userId], ['deal', 290, 8811, 1]);
      assert.match(stdout, new RegExp(`id: ${entry?.id},\\s+chatId: 8811,\\s+connectorId: 'telegrambot',[^}]*joined: true`));
    },
  },
  {
    holds: 'Client.fromToken(',
    async check({ cwd, files, portal }) {
      const [entry, ...more] = await portal.messages();
      assert.deepEqual(more, []);
      assert.deepEqual([entry?.crmEntityType, entry?.crmEntity, entry?.chatId, entry?.auth, entry?.message], ['lead', 101, 8801, 'token', 'Hi']);
      // The expired token was refreshed by the example's function; the store kept the new tokens.
      assert.equal((await portal.admin('counters')).refreshes, 1);
      const stored = JSON.parse(await readFile(new URL('b24-tokens.json', cwd), 'utf8'));
      const token = (await portal.requests()).find((r) => r.method === 'oauth/token');
      assert.deepEqual([token?.status, token?.grantType], [200, 'refresh_token']);
      const before = JSON.parse(files['b24-tokens.json']);
      assert.ok(stored.accessToken && stored.accessToken !== before.accessToken, 'the example kept the new access token');
      assert.ok(stored.refreshToken && stored.refreshToken !== before.refreshToken, 'the example kept the new refresh token');
    },
  },
  {
    holds: 'crmMessageAddMany(items',
    async check({ stdout, portal }) {
      assert.match(stdout, /^3\/3: 3 delivered, 0 failed, 0 unknown$/m);
      assert.doesNotMatch(stdout, /^deal \d+:/m, 'no message failed');
      const sent = (await portal.messages()).map((m) => [m.crmEntity, m.chatId, m.userId]);
      assert.deepEqual(sent, [[288, 8773, 12], [290, 8810, 12], [294, 8841, 12]]);
      assert.ok((await portal.requests()).some((r) => r.method === 'batch'), 'sent in a batch');
    },
  },
  {
    holds: "client.list('crm.lead.list'",
    async check({ stdout, portal }) {
      const ids = ['101', ...Array.from({ length: 119 }, (_, k) => String(1001 + k))];
      assert.deepEqual(stdout.trim().split('\n'), ids);
      assert.equal((await portal.requests()).filter((r) => r.method === 'crm.lead.list').length, 3);
    },
  },
  {
    holds: '{ verify: true, settleMs: 10_000 }',
    async check({ portal }) {
      const [entry, ...more] = await portal.messages();
      assert.deepEqual(more, []);
      assert.deepEqual([entry?.chatId, entry?.userId, entry?.message], [8773, 12, 'Hi']);
      const methods = (await portal.requests()).map((r) => r.method);
      assert.deepEqual(methods, ['im.dialog.messages.get', 'imopenlines.crm.message.add'], 'the watermark read, then the send');
    },
  },
];

/** The entry of `list` whose text `holds` appears in `code` (at most one: see the first
 * test), or undefined. */
const matching = (list, code) => list.find((c) => code.includes(c.holds));

test('the README has js blocks, the first of them its first example', () => {
  assert.ok(blocks.length >= 2, `found ${blocks.length}`);
  assert.equal(blocks[0].typecheckOnly, false);
  assert.ok(blocks[0].code.includes('https://portal.example/rest/1/secret/'), 'the first example uses the placeholder webhook');
  for (const b of blocks) {
    if (b.typecheckOnly) assert.match(b.code, BROWSER_ONLY, `${name(b)} is typecheck-only but needs no portal frame`);
  }
  for (const list of [SETUPS, CHECKS]) {
    for (const c of list) {
      const found = blocks.filter((b) => b.code.includes(c.holds));
      assert.equal(found.length, 1, `exactly one README block holds ${JSON.stringify(c.holds)}: ${found.map(name)}`);
      assert.equal(found[0].typecheckOnly, false, `${name(found[0])} is checked, so it must run`);
    }
  }
});

test('every README block type-checks (tsc --strict, NodeNext)', async (t) => {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const files = [];
  for (const b of blocks) {
    files.push(`${file(b)}.mts`);
    await writeFile(new URL(`${file(b)}.mts`, dir), b.code);
  }
  // What BX24.js declares on a page that loads it.
  await writeFile(new URL('bx24-global.d.ts', dir), "declare const BX24: import('b24-openlines').Bx24Like;\n");
  // Node's types: those the scratch project has (scripts/test.sh links them), else the
  // copy the test script links them from.
  const typeRoot = [new URL('../node_modules/@types', dir).pathname, `${root}/.tools/matrix/node_modules/@types`]
    .find((r) => existsSync(`${r}/node`));
  assert.ok(typeRoot, 'no @types/node: run the tests through scripts/test.sh');
  const compilerOptions = {
    strict: true, noEmit: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext',
    lib: ['es2022'], types: ['node'], typeRoots: [typeRoot], skipLibCheck: false,
  };
  await writeFile(new URL('tsconfig.json', dir), JSON.stringify({ compilerOptions, files: [...files, 'bx24-global.d.ts'] }, null, 2));
  const compilers = [`${root}/node_modules/.bin/tsc`, `${root}/.tools/matrix/node_modules/typescript-5.0/bin/tsc`]
    .filter((tsc, k) => k === 0 || existsSync(tsc));
  for (const tsc of compilers) {
    const version = (await run(process.execPath, [tsc, '--version'])).stdout.trim();
    await t.test(version, async () => {
      try {
        await run(process.execPath, [tsc, '-p', dir.pathname], { cwd: dir.pathname, timeout: 120_000 });
      } catch (e) {
        // Name the README line of each error: the files are named after it.
        const out = String(e.stdout ?? e.message).replace(/(\d+)-line(\d+)\.mts\((\d+),(\d+)\)/g,
          (_, _n, line, l, c) => `README.md:${Number(line) + Number(l)}:${c}`);
        assert.fail(`a README block does not type-check:\n${out}`);
      }
    });
  }
});

/** A block's code as it runs here: placeholders replaced (and a ts block's types stripped). */
async function runnable(b, portal) {
  let code = b.code
    .replaceAll('https://portal.example/rest/1/secret/', portal.webhook)
    .replaceAll('https://portal.bitrix24.com/rest/', portal.clientEndpoint)
    .replaceAll('https://oauth.bitrix.info/oauth/token/', portal.oauthUrl);
  assert.doesNotMatch(code, /['"`]https:\/\//, `${name(b)} would reach a portal other than the local one`);
  if (b.lang === 'ts') {
    const { default: ts } = await import(pathToFileURL(`${root}/node_modules/typescript/lib/typescript.js`).href);
    code = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  }
  return code;
}

for (const b of blocks) {
  if (b.typecheckOnly) continue;
  test(`${name(b)} runs against the local portal`, { timeout: SNIPPET_TIMEOUT_MS + 10_000 }, async () => {
    const portal = ctx.portal;
    await portal.admin('reset', {});
    const cwd = new URL(`run/${file(b)}/`, dir);
    await rm(cwd, { recursive: true, force: true });
    await mkdir(cwd, { recursive: true });
    const files = (await matching(SETUPS, b.code)?.files(portal)) ?? {};
    for (const [f, text] of Object.entries(files)) await writeFile(new URL(f, cwd), text);
    await writeFile(new URL('snippet.mjs', cwd), await runnable(b, portal));
    const env = { ...process.env, B24_WEBHOOK_URL: portal.webhook };
    delete env.NODE_TEST_CONTEXT;
    let stdout;
    try {
      ({ stdout } = await run(process.execPath, ['snippet.mjs'], { cwd: cwd.pathname, env, timeout: SNIPPET_TIMEOUT_MS }));
    } catch (e) {
      const why = e.killed ? `timed out after ${SNIPPET_TIMEOUT_MS} ms` : `exited with ${e.code}`;
      assert.fail(`${name(b)} ${why}\n--- stdout\n${e.stdout}\n--- stderr\n${e.stderr}`);
    }
    await matching(CHECKS, b.code)?.check({ stdout, cwd, files, portal });
  });
}
