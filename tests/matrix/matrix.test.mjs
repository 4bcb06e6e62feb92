// The toolchain matrix: for each common bundler and runtime, a tiny app is built from
// the installed package (the packed tarball) with no bundler configuration beyond the
// entry, then run, and it sends one message to the local portal. A row passes when the
// portal's ledger holds that message. Browser apps run in headless Chromium, served
// from another origin than the portal's, as a Bitrix24 app is.
//
// Runs from the scratch project where scripts/test.sh installed the package, with the
// toolchains of tests/matrix/tools (B24_TOOLS: their node_modules) and Node 18
// (B24_NODE18).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { usePortal } from '../test/portal.mjs';
import { serve, resultOfPage } from '../test/browser.mjs';

const run = promisify(execFile);
const tools = process.env.B24_TOOLS;
const toolsRequire = createRequire(join(tools ?? '.', 'x.js'));
const repoRequire = createRequire(`${process.env.B24_REPO_ROOT}/package.json`);
const apps = new URL('../apps/', import.meta.url);
const ctx = usePortal();
const seed = { crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773 };

test.before(() => assert.ok(tools, 'B24_TOOLS is not set (run the tests through scripts/test.sh)'));

/** Writes `files` ({ name: text }) into a fresh app folder; resolves to its URL. */
async function app(name, files) {
  const dir = new URL(`${name}/`, apps);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    await mkdir(new URL('.', new URL(file, dir)), { recursive: true });
    await writeFile(new URL(file, dir), text);
  }
  return dir;
}

/** The body every app runs: sends `message` and settles to { id } or { error }, with
 * what the page fetched (in a browser): whether a .wasm, and how many bytes of JS. */
const send = (message, webhookExpr) => `(async () => {
  const fetched = () => {
    try {
      const r = performance.getEntriesByType('resource');
      return { wasm: r.some((e) => e.name.endsWith('.wasm')),
        jsBytes: r.filter((e) => /\\.m?js$/.test(new URL(e.name).pathname)).reduce((n, e) => n + (e.decodedBodySize || 0), 0) };
    } catch {
      return undefined;
    }
  };
  try {
    const id = await crmMessageAdd(${JSON.stringify({ ...seed, message })}, { webhookUrl: ${webhookExpr} });
    return { id, fetched: fetched() };
  } catch (e) {
    return { error: { code: e.code, description: e.description } };
  }
})()`;

/** The size of the module carried inline (base64 in wasm-inline.js): a browser app that
 * fetched less JS than this did not load it. */
const inlineBytes = async () => (await readFile(new URL('../node_modules/b24-openlines/wasm-inline.js', import.meta.url))).length;

/** Asserts that a browser app fetched the separate .wasm and never the inline module. */
async function assertSeparateWasm({ result }) {
  assert.equal(result?.fetched?.wasm, true, JSON.stringify(result));
  assert.ok(result.fetched.jsBytes < await inlineBytes(), `${result.fetched.jsBytes} bytes of JS fetched: the inline module too`);
}

/** A browser app's script: the result lands in window.result once settled. */
const pageApp = (from, message) => `import { crmMessageAdd } from '${from}';
${send(message, "new URLSearchParams(location.search).get('webhook')")}.then((r) => { window.result = r; });
`;

const html = (script) => `<!doctype html><meta charset="utf-8"><script type="module" src="./${script}"></script>`;

/** Serves `dir` and resolves to what the page computed. */
async function runPage(dir, page = '') {
  const site = await serve({ '/': dir });
  try {
    return await resultOfPage(`${site.origin}/${page}?webhook=${encodeURIComponent(ctx.portal.webhook)}`);
  } finally {
    site.close();
  }
}

/** Asserts that the app's result is a message id the portal stored with `message`. */
async function assertDelivered({ result, logs = [] }, message) {
  assert.equal(typeof result?.id, 'number', `${JSON.stringify(result)}\n${logs.join('\n')}`);
  const entry = (await ctx.portal.messages()).find((m) => m.id === result.id);
  assert.equal(entry?.message, message);
  assert.equal(entry?.chatId, seed.chatId);
}

/** Runs a Node-like program and parses the JSON it prints. */
async function runProgram(bin, args, options = {}) {
  const { stdout, stderr } = await run(bin, args, { timeout: 60_000, ...options });
  try {
    return { result: JSON.parse(stdout.trim().split('\n').pop()), logs: [stderr] };
  } catch {
    throw new Error(`no JSON result:\n${stdout}\n${stderr}`);
  }
}

const nodeApp = (message, webhookExpr = 'process.argv[2]') => `import { crmMessageAdd } from 'b24-openlines';
${send(message, webhookExpr)}.then((r) => console.log(JSON.stringify(r)));
`;
const cjsApp = (message) => `const { crmMessageAdd } = require('b24-openlines');
${send(message, 'process.argv[2]')}.then((r) => console.log(JSON.stringify(r)));
`;

const esbuild = () => toolsRequire('esbuild');

test('Vite: a production build sends the message from a module worker that got a message at once', async () => {
  const message = 'from a Vite module worker';
  const dir = await app('vite-worker', {
    'index.html': html('main.js'),
    'main.js': `const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
worker.postMessage(new URLSearchParams(location.search).get('webhook'));
worker.onmessage = (e) => { window.result = e.data; };
`,
    'worker.js': `import { crmMessageAdd } from 'b24-openlines';
self.onmessage = async (e) => postMessage(await ${send(message, 'e.data')});
`,
  });
  const viteDir = dirname(repoRequire.resolve('vite/package.json'));
  const { build } = await import(pathToFileURL(join(viteDir, 'dist/node/index.js')).href);
  await build({ root: fileURLToPath(dir), logLevel: 'warn', build: { outDir: 'dist', emptyOutDir: true } });
  const page = await runPage(new URL('dist/', dir));
  await assertDelivered(page, message);
  await assertSeparateWasm(page);
});

test('a plain module worker (no bundler) handles a message posted right after new Worker()', async () => {
  const message = 'from a plain module worker';
  const dir = await app('plain-worker', {
    'index.html': `<!doctype html><meta charset="utf-8"><script type="module">
const worker = new Worker('./worker.js', { type: 'module' });
worker.postMessage(new URLSearchParams(location.search).get('webhook'));
worker.onmessage = (e) => { window.result = e.data; };
</script>`,
    'worker.js': `import { crmMessageAdd } from '/pkg/index.js';
self.onmessage = async (e) => postMessage(await ${send(message, 'e.data')});
`,
  });
  const site = await serve({ '/pkg/': new URL('../node_modules/b24-openlines/', import.meta.url), '/': dir });
  try {
    await assertDelivered(await resultOfPage(`${site.origin}/?webhook=${encodeURIComponent(ctx.portal.webhook)}`), message);
  } finally {
    site.close();
  }
});

test('webpack 5 (production, no config) bundles the default entry and its .wasm', async () => {
  const message = 'from webpack 5';
  const dir = await app('webpack', { 'src/index.js': pageApp('b24-openlines', message) });
  const webpack = toolsRequire('webpack');
  const stats = await new Promise((resolve, reject) => webpack({
    mode: 'production', context: fileURLToPath(dir), entry: './src/index.js', output: { path: fileURLToPath(new URL('dist/', dir)) },
  }, (err, s) => (err ? reject(err) : resolve(s))));
  assert.ok(!stats.hasErrors(), stats.toString('errors-only'));
  await writeFile(new URL('dist/index.html', dir), '<!doctype html><meta charset="utf-8"><script src="./main.js"></script>');
  const page = await runPage(new URL('dist/', dir));
  await assertDelivered(page, message);
  await assertSeparateWasm(page);
});

test('esbuild, browser ESM: the inline entry works with no asset handling, and the default entry says to use it', async () => {
  const message = 'from esbuild, browser ESM';
  const dir = await app('esbuild-esm', {
    'main.js': pageApp('b24-openlines/inline', message),
    'default.js': pageApp('b24-openlines', 'never sent'),
    'dist/index.html': html('main.js'),
    'dist/default.html': html('default.js'),
  });
  const built = await esbuild().build({
    entryPoints: [fileURLToPath(new URL('main.js', dir)), fileURLToPath(new URL('default.js', dir))],
    bundle: true, format: 'esm', outdir: fileURLToPath(new URL('dist/', dir)), logLevel: 'silent',
  });
  assert.deepEqual(built.warnings.map((w) => w.text), []);
  await assertDelivered(await runPage(new URL('dist/', dir)), message);
  // The default entry's .wasm is not copied by esbuild: the error names the way out.
  const { result } = await runPage(new URL('dist/', dir), 'default.html');
  assert.equal(result.error?.code, 'LOAD_ERROR', JSON.stringify(result));
  assert.match(result.error.description, /b24-openlines\/inline/);
});

test('esbuild, browser, in a "type": "commonjs" project (default iife output)', async () => {
  const message = 'from esbuild in a CommonJS project';
  const dir = await app('esbuild-cjs-project', {
    'package.json': '{ "name": "cjs-app", "private": true, "type": "commonjs" }\n',
    'main.js': pageApp('b24-openlines/inline', message),
    'dist/index.html': '<!doctype html><meta charset="utf-8"><script src="./main.js"></script>',
  });
  const built = await esbuild().build({
    entryPoints: [fileURLToPath(new URL('main.js', dir))], bundle: true,
    outdir: fileURLToPath(new URL('dist/', dir)), logLevel: 'silent',
  });
  assert.deepEqual(built.warnings.map((w) => w.text), []);
  await assertDelivered(await runPage(new URL('dist/', dir)), message);
});

test('esbuild, Node bundle (default CommonJS output): one self-contained file, run away from node_modules', async () => {
  const message = 'from an esbuild Node bundle';
  const dir = await app('esbuild-node', { 'main.mjs': nodeApp(message) });
  const out = await mkdtemp(join(tmpdir(), 'b24-esbuild-node-'));
  try {
    const built = await esbuild().build({
      entryPoints: [fileURLToPath(new URL('main.mjs', dir))], bundle: true, platform: 'node',
      outfile: join(out, 'bundle.js'), logLevel: 'silent',
    });
    assert.deepEqual(built.warnings.map((w) => w.text), []);
    await assertDelivered(await runProgram(process.execPath, [join(out, 'bundle.js'), ctx.portal.webhook]), message);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('Rollup with node-resolve: the inline entry in an ES bundle', async () => {
  const message = 'from Rollup';
  const dir = await app('rollup', {
    'main.js': pageApp('b24-openlines/inline', message),
    'dist/index.html': html('main.js'),
  });
  const { rollup } = toolsRequire('rollup');
  const { nodeResolve } = toolsRequire('@rollup/plugin-node-resolve');
  const warnings = [];
  const bundle = await rollup({
    input: fileURLToPath(new URL('main.js', dir)), plugins: [nodeResolve({ browser: true })],
    onwarn: (w) => warnings.push(w.message),
  });
  await bundle.write({ file: fileURLToPath(new URL('dist/main.js', dir)), format: 'es' });
  await bundle.close();
  assert.deepEqual(warnings, []);
  await assertDelivered(await runPage(new URL('dist/', dir)), message);
});

test('Parcel (production, no config) bundles the default entry and its .wasm', async () => {
  const message = 'from Parcel';
  const dir = await app('parcel', { 'index.html': html('main.js'), 'main.js': pageApp('b24-openlines', message) });
  await run(join(tools, '.bin/parcel'), ['build', 'index.html', '--no-cache', '--no-source-maps', '--dist-dir', 'dist', '--log-level', 'warn'], {
    cwd: fileURLToPath(dir), timeout: 120_000, env: { ...process.env, PARCEL_WORKERS: '1' },
  });
  await assertDelivered(await runPage(new URL('dist/', dir)), message);
});

for (const [runtime, bin] of [['Node 20+', process.execPath], ['Node 18', process.env.B24_NODE18]]) {
  test(`${runtime}: import and require`, { skip: bin ? false : 'B24_NODE18 is not set (Node 18 runs on Linux x64 only)' }, async () => {
    const dir = await app(`node-${runtime.replace(/\W/g, '')}`, {
      'app.mjs': nodeApp(`from ${runtime} ESM`),
      'app.cjs': cjsApp(`from ${runtime} CJS`),
    });
    await assertDelivered(await runProgram(bin, [fileURLToPath(new URL('app.mjs', dir)), ctx.portal.webhook]), `from ${runtime} ESM`);
    await assertDelivered(await runProgram(bin, [fileURLToPath(new URL('app.cjs', dir)), ctx.portal.webhook]), `from ${runtime} CJS`);
  });
}

test('Deno: import with --allow-net for the portal only (no read permission)', async () => {
  const message = 'from Deno';
  const dir = await app('deno', { 'app.mjs': nodeApp(message, 'Deno.args[0]') });
  const portal = new URL(ctx.portal.url);
  await assertDelivered(await runProgram(join(tools, '.bin/deno'), [
    'run', '--no-prompt', '--no-lock', `--allow-net=${portal.host}`, fileURLToPath(new URL('app.mjs', dir)), ctx.portal.webhook,
  ], {
    cwd: fileURLToPath(new URL('../', import.meta.url)),
    env: { ...process.env, DENO_DIR: fileURLToPath(new URL('../deno-cache/', import.meta.url)), DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
  }), message);
});

test('Bun: import and require', async () => {
  const dir = await app('bun', {
    'app.mjs': nodeApp('from Bun ESM'),
    'app.cjs': cjsApp('from Bun CJS'),
  });
  const bun = join(tools, '.bin/bun');
  await assertDelivered(await runProgram(bun, [fileURLToPath(new URL('app.mjs', dir)), ctx.portal.webhook]), 'from Bun ESM');
  await assertDelivered(await runProgram(bun, [fileURLToPath(new URL('app.cjs', dir)), ctx.portal.webhook]), 'from Bun CJS');
});
