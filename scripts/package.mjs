// Completes the wasm-pack output in pkg/ into the published package: entry points that
// load the module by themselves (Node reads the file, browsers and bundlers fetch it
// next to the script), their type declarations, and the package.json fields that
// point at them. Then reports the gzipped size of what a browser downloads.
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const pkg = new URL('../pkg/', import.meta.url);
const path = (f) => new URL(f, pkg);
const manifest = JSON.parse(await readFile(path('package.json'), 'utf8'));
const glue = manifest.main; // e.g. b24_openlines.js, written by wasm-pack --target web
const wasm = glue.replace(/\.js$/, '_bg.wasm');
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
await writeFile(path('index.d.ts'), `export * from './${glue.replace(/\.js$/, '.js')}';\n`);

const files = new Set(manifest.files ?? []);
for (const f of ['index.js', 'node.js', 'index.d.ts', glue, wasm, glue.replace(/\.js$/, '.d.ts')]) files.add(f);
if (existsSync(path('snippets'))) files.add('snippets/');
for (const f of ['README.md', 'LICENSE']) if (existsSync(path(f))) files.add(f);
Object.assign(manifest, {
  main: './node.js',
  module: './index.js',
  types: './index.d.ts',
  exports: {
    '.': { types: './index.d.ts', node: './node.js', default: './index.js' },
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
