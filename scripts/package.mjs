// Completes the wasm-pack output in pkg/ into the published package: the JS layer
// (src/js/api.js, and the token stores of src/js/stores.js and src/js/node.js) and one
// small entry per kind of consumer, each loading the module lazily on the first call (no
// top-level await), their type declarations, and the package.json fields that point at
// them. Then reports what each entry costs.
//
// Entries (package.json "exports"):
//   index.js   `import` in browsers and bundlers: fetches the .wasm next to itself,
//              `new URL('./…_bg.wasm', import.meta.url)`, which Vite, webpack and Parcel
//              turn into an emitted asset. The smallest download; the default.
//   inline.js  `import` in Node, Deno and Bun (condition `node`), and the subpath
//              `b24-openlines/inline` for bundlers that do not copy assets (esbuild,
//              Rollup): the module travels inside the JS, gzipped and base64-encoded,
//              and is unpacked with DecompressionStream. No file access, no asset.
//   index.cjs  `require`: the same API; the ES glue and the inline module are
//              imported on first use.
//   node.js    the subpath `b24-openlines/node` (node.cjs for `require`): the Node-only
//              `fileTokenStore`, in an entry of its own so that no browser bundle sees
//              node:fs.
import { copyFile, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { buildSync, transformSync } from 'esbuild';

const pkg = new URL('../pkg/', import.meta.url);
const src = new URL('../src/js/', import.meta.url);
const path = (f) => new URL(f, pkg);
const manifest = JSON.parse(await readFile(path('package.json'), 'utf8'));
// wasm-pack --target web writes NAME_bg.wasm and its glue NAME.js (found by name, so
// that running this script twice gives the same result).
const wasm = (await readdir(pkg)).find((f) => f.endsWith('_bg.wasm'));
if (!wasm) throw new Error('pkg/ has no *_bg.wasm: run wasm-pack build first');
const glue = wasm.replace(/_bg\.wasm$/, '.js');
const INLINE = 'wasm-inline.js';
const header = '// Entry point of the package: the API, which loads the WebAssembly module on first use.\n';
const NAMES = ['Client', 'Bitrix24Error', 'crmMessageAdd', 'sendToCrmItem', 'isBitrix24Error', 'init'];
// The token stores (stores.js), exported next to the API by every main entry.
const STORES = ['memoryTokenStore', 'webStorageTokenStore'];
const exportsLine = `export const { ${NAMES.join(', ')} } = api;\nexport { ${STORES.join(', ')} } from './stores.js';\n`;

// The glue's default module location (`new URL(…, import.meta.url)`) is never used (every
// entry passes the module), but bundlers would still see it: esbuild warns about
// import.meta in a script or CommonJS bundle. Its pointer to its own declarations
// names a file that is not shipped. Both go; the build fails if the glue changes shape.
let glueText = await readFile(path(glue), 'utf8');
glueText = glueText
  .replace(/^\/\* @ts-self-types="[^"]*" \*\/\n/m, '')
  .replace(/new URL\('[^']*_bg\.wasm', import\.meta\.url\)/, 'undefined');
if (glueText.includes('import.meta') || glueText.includes('@ts-self-types')) {
  throw new Error(`${glue}: unexpected glue shape (import.meta or @ts-self-types left)`);
}
await writeFile(path(glue), glueText);

await copyFile(new URL('api.js', src), path('api.js'));
await copyFile(new URL('stores.js', src), path('stores.js'));
await copyFile(new URL('node.js', src), path('node.js'));

// Browsers and bundlers: the module is fetched next to this file.
await writeFile(path('index.js'), `${header}import load, * as glue from './${glue}';
import { makeApi } from './api.js';
const api = makeApi(async () => {
  try {
    await load({ module_or_path: new URL('./${wasm}', import.meta.url) });
  } catch (e) {
    throw new Error(\`\${e?.message ?? e}; if your bundler does not copy ${wasm} next to its output (esbuild, Rollup), import 'b24-openlines/inline' instead\`);
  }
  return glue;
});
${exportsLine}`);

// The module inline: gzipped (DecompressionStream unpacks it: browsers since 2023, Node
// 18+, Deno, Bun), then base64. Costs about as much over a gzipped connection as the
// .wasm itself; used by the Node entry and the inline subpath.
const wasmBytes = await readFile(path(wasm));
const packed = gzipSync(wasmBytes, { level: 9 }).toString('base64');
await writeFile(path(INLINE), `// The WebAssembly module, gzipped and base64-encoded, and its loader.
import load, * as glue from './${glue}';

const packed = '${packed}';

/** Instantiates the module carried here; resolves to the glue's exports. */
export async function loadInline() {
  const text = atob(packed);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const module = await new Response(new Response(bytes).body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer();
  await load({ module_or_path: module });
  return glue;
}
`);
await writeFile(path('inline.js'), `${header}import { loadInline } from './${INLINE}';
import { makeApi } from './api.js';
const api = makeApi(loadInline);
${exportsLine}`);

// CommonJS (require): the same API and stores inlined; the loader, an ES module, is
// imported on first use.
const apiSource = (await readFile(new URL('api.js', src), 'utf8')).replace('export function makeApi', 'function makeApi');
if (apiSource.includes('export ')) throw new Error('api.js: an export other than makeApi would be lost in index.cjs');
const storesSource = (await readFile(new URL('stores.js', src), 'utf8')).replace(/^export (function|const) /gm, '$1 ');
if (/^\s*(export|import)\b/m.test(storesSource)) throw new Error('stores.js: an export or import other than `export function`/`export const` would break index.cjs');
await writeFile(path('index.cjs'), `${header}'use strict';
${apiSource}
${storesSource}
const api = makeApi(() => import('./${INLINE}').then((m) => m.loadInline()));
${NAMES.map((n) => `exports.${n} = api.${n};`).join('\n')}
${STORES.map((n) => `exports.${n} = ${n};`).join('\n')}
`);

// The Node subpath for CommonJS: node.js with the helpers it takes from stores.js bundled in
// (an ES module cannot be required on Node 18 and 20).
const [nodeCjs] = buildSync({
  entryPoints: [fileURLToPath(new URL('node.js', src))], bundle: true, platform: 'node', target: 'node18',
  format: 'cjs', write: false, logLevel: 'error',
}).outputFiles;
await writeFile(path('node.cjs'), nodeCjs.text);

// Types: the same declarations for ESM (.d.ts) and CommonJS (.d.cts); the inline subpath
// re-exports them.
const types = await readFile(new URL('index.d.ts', src), 'utf8');
await writeFile(path('index.d.ts'), types);
await writeFile(path('index.d.cts'), types);
await writeFile(path('inline.d.ts'), "// Types of the inline entry: the package's own.\nexport * from './index.js';\n");
await writeFile(path('inline.d.cts'), "// Types of the inline entry: the package's own.\nexport * from './index.cjs';\n");
// The Node subpath: fileTokenStore, typed with the main entry's TokenStore.
const nodeTypes = (main) => `// Types of the Node entry, b24-openlines/node.
import type { TokenStore } from '${main}';

/** A token store in the JSON file at \`path\`, shared by the processes of one machine: its
 * \`lock(name, fn)\` holds a lock file of that name's own beside it, taken as stale (its
 * holder crashed) and removed once older than \`staleMs\` (default 30000), so a holder must
 * finish within it.
 * \`get\` resolves to undefined when there is no file and rejects when the file holds no tokens. */
export declare function fileTokenStore(path: string, options?: { staleMs?: number }): TokenStore;
`;
await writeFile(path('node.d.ts'), nodeTypes('./index.js'));
await writeFile(path('node.d.cts'), nodeTypes('./index.cjs'));
// The glue's own declarations describe internals, not the package's API.
await rm(path(glue.replace(/\.js$/, '.d.ts')), { force: true });
await rm(path(`${wasm}.d.ts`), { force: true });
await rm(path('cjs'), { recursive: true, force: true });

// The shipped JS minified, local names shortened but function and class names kept
// (so stack traces still name the package's functions): what a browser fetches without
// a bundler. The API's lines stay near 250 characters, so that Node's report of an
// uncaught error quotes one short line rather than the whole file (+150 bytes gzipped).
// The readable sources are src/js/*.js in the repository; types keep their docs.
for (const f of ['index.js', 'inline.js', 'index.cjs', 'api.js', 'stores.js', 'node.js', 'node.cjs', INLINE, glue]) {
  const code = await readFile(path(f), 'utf8');
  const { code: small } = transformSync(code, { minify: true, keepNames: true, lineLimit: f === 'api.js' ? 250 : undefined, legalComments: 'none', format: f.endsWith('.cjs') ? 'cjs' : 'esm' });
  await writeFile(path(f), small);
}

const files = new Set(['index.js', 'inline.js', 'index.cjs', 'api.js', 'stores.js', INLINE, 'index.d.ts', 'index.d.cts',
  'inline.d.ts', 'inline.d.cts', 'node.js', 'node.cjs', 'node.d.ts', 'node.d.cts', glue, wasm]);
if (existsSync(path('snippets'))) files.add('snippets/');
for (const f of ['README.md', 'LICENSE']) if (existsSync(path(f))) files.add(f);
delete manifest.module;
// The repository as npm links it (git+https://….git, the form publint asks for).
const repo = manifest.repository?.url;
if (repo && /^https:\/\/github\.com\/[^/]+\/[^/]+$/.test(repo)) manifest.repository.url = `git+${repo}.git`;
Object.assign(manifest, {
  main: './index.cjs',
  types: './index.d.cts',
  exports: {
    '.': {
      import: { types: './index.d.ts', node: './inline.js', default: './index.js' },
      require: { types: './index.d.cts', default: './index.cjs' },
    },
    './inline': {
      import: { types: './inline.d.ts', default: './inline.js' },
      require: { types: './inline.d.cts', default: './index.cjs' },
    },
    './node': {
      import: { types: './node.d.ts', default: './node.js' },
      require: { types: './node.d.cts', default: './node.cjs' },
    },
    './package.json': './package.json',
  },
  files: [...files],
  sideEffects: false,
  engines: { node: '>=18' },
});
await writeFile(path('package.json'), JSON.stringify(manifest, null, 2) + '\n');

// What each entry costs: the sum of its files, raw, gzipped and brotli-compressed (each
// file compressed on its own, as a server sends them).
const sizes = async (list) => {
  const out = { bytes: 0, gzip: 0, brotli: 0 };
  for (const f of list) {
    const b = await readFile(path(f));
    out.bytes += b.length;
    out.gzip += gzipSync(b, { level: 9 }).length;
    out.brotli += brotliCompressSync(b).length;
  }
  return out;
};
const entries = {
  'index.js (browser, .wasm fetched)': await sizes(['index.js', 'api.js', 'stores.js', glue, wasm]),
  'inline.js (Node/Deno/Bun, b24-openlines/inline)': await sizes(['inline.js', 'api.js', 'stores.js', INLINE, glue]),
  'index.cjs (require)': await sizes(['index.cjs', INLINE, glue]),
  'node.js (b24-openlines/node)': await sizes(['node.js', 'stores.js']),
};
const browser = entries['index.js (browser, .wasm fetched)'];
const report = {
  wasmBytes: wasmBytes.length,
  wasmGzip: (await sizes([wasm])).gzip,
  jsGzip: browser.gzip - (await sizes([wasm])).gzip,
  totalGzip: browser.gzip,
  entries,
};
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
console.log(`package size: ${wasm} ${kb(report.wasmBytes)} (${kb(report.wasmGzip)} gzipped) + JS ${kb(report.jsGzip)} gzipped = ${kb(report.totalGzip)} gzipped`);
for (const [name, s] of Object.entries(entries)) {
  console.log(`  ${name}: ${s.bytes} bytes, ${s.gzip} gzipped, ${s.brotli} brotli`);
}
await writeFile(new URL('../target/size-report.json', import.meta.url), JSON.stringify(report) + '\n');
