// Completes the wasm-pack output in pkg/ into the published package: entry points that
// load the module by themselves (Node reads the file, browsers and bundlers fetch it
// next to the script), their type declarations, and the package.json fields that
// point at them. Then reports the gzipped size of what a browser downloads.
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const pkg = new URL('../pkg/', import.meta.url);
const path = (f) => new URL(f, pkg);
const manifest = JSON.parse(await readFile(path('package.json'), 'utf8'));
// wasm-pack --target web writes NAME_bg.wasm and its glue NAME.js (found by name, so
// that running this script twice gives the same result).
const wasm = (await readdir(pkg)).find((f) => f.endsWith('_bg.wasm'));
if (!wasm) throw new Error('pkg/ has no *_bg.wasm: run wasm-pack build first');
const glue = wasm.replace(/_bg\.wasm$/, '.js');
const header = '// Entry point of the package: loads the WebAssembly module, then exports the API.\n';

await writeFile(path('index.js'), `${header}import init from './${glue}';
await init({ module_or_path: new URL('./${wasm}', import.meta.url) });
export * from './${glue}';
`);
await writeFile(path('node.js'), `${header}import { readFile } from 'node:fs/promises';
import { initSync } from './${glue}';
initSync({ module: await readFile(new URL('./${wasm}', import.meta.url)) });
export * from './${glue}';
`);
// The generated declarations use Symbol.dispose; name its lib so that consumers on an
// older `lib` setting still type-check without skipLibCheck.
await writeFile(path('index.d.ts'), `/// <reference lib="esnext.disposable" />\nexport * from './${glue}';\n`);

// CommonJS: the nodejs-target glue (it reads the .wasm next to it synchronously).
const cjs = new URL('../target/pkg-cjs/', import.meta.url);
const cjsDir = path('cjs/');
await mkdir(cjsDir, { recursive: true });
for (const f of [glue, wasm]) await copyFile(new URL(f, cjs), new URL(f, cjsDir));
await writeFile(new URL('package.json', cjsDir), '{ "type": "commonjs" }\n');

const files = new Set(manifest.files ?? []);
files.add('cjs/');
for (const f of ['index.js', 'node.js', 'index.d.ts', glue, wasm, glue.replace(/\.js$/, '.d.ts')]) files.add(f);
if (existsSync(path('snippets'))) files.add('snippets/');
for (const f of ['README.md', 'LICENSE']) if (existsSync(path(f))) files.add(f);
Object.assign(manifest, {
  main: `./cjs/${glue}`,
  module: './index.js',
  types: './index.d.ts',
  exports: {
    '.': {
      types: './index.d.ts',
      node: { import: './node.js', require: `./cjs/${glue}` },
      default: './index.js',
    },
    './package.json': './package.json',
  },
  files: [...files],
  sideEffects: ['./index.js', './node.js', './snippets/*'],
  engines: { node: '>=18' },
});
await writeFile(path('package.json'), JSON.stringify(manifest, null, 2) + '\n');

// What a browser downloads: the .wasm, the glue and the entry point, each gzipped.
const gz = async (f) => gzipSync(await readFile(path(f)), { level: 9 }).length;
const report = {
  wasmBytes: (await readFile(path(wasm))).length,
  wasmGzip: await gz(wasm),
  jsGzip: (await gz(glue)) + (await gz('index.js')),
};
report.totalGzip = report.wasmGzip + report.jsGzip;
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
console.log(`package size: ${wasm} ${kb(report.wasmBytes)} (${kb(report.wasmGzip)} gzipped) + JS ${kb(report.jsGzip)} gzipped = ${kb(report.totalGzip)} gzipped`);
await writeFile(new URL('../target/size-report.json', import.meta.url), JSON.stringify(report) + '\n');
