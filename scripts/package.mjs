// Completes the wasm-pack output in pkg/ into the published package: the JS layer
// (src/js/api.js) and one small entry per kind of consumer, each loading the module
// lazily on the first call (no top-level await), their type declarations, and the
// package.json fields that point at them. Then reports the gzipped size of what a
// browser downloads.
import { copyFile, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const pkg = new URL('../pkg/', import.meta.url);
const src = new URL('../src/js/', import.meta.url);
const path = (f) => new URL(f, pkg);
const manifest = JSON.parse(await readFile(path('package.json'), 'utf8'));
// wasm-pack --target web writes NAME_bg.wasm and its glue NAME.js (found by name, so
// that running this script twice gives the same result).
const wasm = (await readdir(pkg)).find((f) => f.endsWith('_bg.wasm'));
if (!wasm) throw new Error('pkg/ has no *_bg.wasm: run wasm-pack build first');
const glue = wasm.replace(/_bg\.wasm$/, '.js');
const header = '// Entry point of the package: the API, which loads the WebAssembly module on first use.\n';
const exportsLine = 'export const { Client, Bitrix24Error, crmMessageAdd, isBitrix24Error, init } = api;\n';

await copyFile(new URL('api.js', src), path('api.js'));
// Browsers and bundlers: the module is fetched next to this file.
await writeFile(path('index.js'), `${header}import load, * as glue from './${glue}';
import { makeApi } from './api.js';
const api = makeApi(async () => {
  await load({ module_or_path: new URL('./${wasm}', import.meta.url) });
  return glue;
});
${exportsLine}`);
// Node, Deno and Bun (ESM): the module is read from disk.
await writeFile(path('node.js'), `${header}import { initSync } from './${glue}';
import * as glue from './${glue}';
import { makeApi } from './api.js';
const api = makeApi(async () => {
  const { readFile } = await import('node:fs/promises');
  initSync({ module: await readFile(new URL('./${wasm}', import.meta.url)) });
  return glue;
});
${exportsLine}`);
// CommonJS (require): the same API inlined; the glue, an ES module, is imported on first use.
const apiSource = (await readFile(new URL('api.js', src), 'utf8')).replace('export function makeApi', 'function makeApi');
await writeFile(path('index.cjs'), `${header}'use strict';
${apiSource}
const api = makeApi(async () => {
  const glue = await import('./${glue}');
  const { readFileSync } = require('node:fs');
  glue.initSync({ module: readFileSync(require('node:path').join(__dirname, '${wasm}')) });
  return glue;
});
module.exports = { Client: api.Client, Bitrix24Error: api.Bitrix24Error, crmMessageAdd: api.crmMessageAdd, isBitrix24Error: api.isBitrix24Error, init: api.init };
`);
const types = await readFile(new URL('index.d.ts', src), 'utf8');
await writeFile(path('index.d.ts'), types);
await writeFile(path('index.d.cts'), types);
// The glue's own declarations describe internals, not the package's API.
await rm(path(glue.replace(/\.js$/, '.d.ts')), { force: true });
await rm(path(`${wasm}.d.ts`), { force: true });
await rm(path('cjs'), { recursive: true, force: true });

const files = new Set(['index.js', 'node.js', 'index.cjs', 'api.js', 'index.d.ts', 'index.d.cts', glue, wasm]);
if (existsSync(path('snippets'))) files.add('snippets/');
for (const f of ['README.md', 'LICENSE']) if (existsSync(path(f))) files.add(f);
delete manifest.types;
Object.assign(manifest, {
  main: './index.cjs',
  module: './index.js',
  types: './index.d.ts',
  exports: {
    '.': {
      import: { types: './index.d.ts', node: './node.js', default: './index.js' },
      require: { types: './index.d.cts', default: './index.cjs' },
    },
    './package.json': './package.json',
  },
  files: [...files],
  sideEffects: false,
  engines: { node: '>=18' },
});
await writeFile(path('package.json'), JSON.stringify(manifest, null, 2) + '\n');

// What a browser downloads: the .wasm, the glue, the API and the entry, each gzipped.
const gz = async (f) => gzipSync(await readFile(path(f)), { level: 9 }).length;
const report = {
  wasmBytes: (await readFile(path(wasm))).length,
  wasmGzip: await gz(wasm),
  jsGzip: (await gz(glue)) + (await gz('api.js')) + (await gz('index.js')),
};
report.totalGzip = report.wasmGzip + report.jsGzip;
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
console.log(`package size: ${wasm} ${kb(report.wasmBytes)} (${kb(report.wasmGzip)} gzipped) + JS ${kb(report.jsGzip)} gzipped = ${kb(report.totalGzip)} gzipped`);
await writeFile(new URL('../target/size-report.json', import.meta.url), JSON.stringify(report) + '\n');
