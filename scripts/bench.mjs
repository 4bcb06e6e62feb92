// Per-call cost of the package in Node against raw fetch, in one process, on loopback.
//
//   node scripts/bench.mjs [--blocks 30] [--calls 150]
//
// Starts a local portal (release build: `cargo build --release -p b24-portal`), then
// alternates blocks of sequential calls of three variants, rotating their order every
// block, and prints each variant's median per-call time over the blocks and its ratio
// to raw fetch measured in the same run:
//   raw    fetch(url, {method: 'POST', body}) + await res.json()
//   lean   the same with the work any careful client must do: an AbortController, a
//          timer, res.text() and JSON.parse (the floor for a client with timeouts)
//   layer  the package's JS layer alone: client.call() with the module's two steps
//          (call: prepare the request; response: judge the answer) answered at once
//          by a stand-in, so pkg - layer is what the module's steps cost in the loop
//   floor  the layer again, each stand-in step also crossing into the module with a
//          string and back (a function that does almost no work): what any design
//          with a wasm step before and after the request costs at the least
//   pkg    client.call(method, params) of the built package
//   typed  client.crmChatGet(...) (the same request through a typed method)
// Then it times the module's two steps themselves, once right after a request (as
// in a call) and once more back to back, to show how much of their cost is the
// caches they find cold after network I/O.
// Every variant sends the same form body to the same method, so the portal's work is
// identical. The package's size report (target/size-report.json) is printed too.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    blocks: { type: 'string', default: '30' }, calls: { type: 'string', default: '150' },
    method: { type: 'string', default: 'imopenlines.crm.chat.get' }, starts: { type: 'string', default: '20' },
  },
});
const BLOCKS = Number(opts.blocks);
const CALLS = Number(opts.calls);
const METHOD = opts.method;
const PARAMS = { CRM_ENTITY_TYPE: 'deal', CRM_ENTITY: 288 };

const bin = ['release', 'debug'].map((p) => `${root}target/${p}/b24-portal`).find(existsSync);
if (!bin) throw new Error('build the portal first: cargo build --release -p b24-portal');
const entry = `${root}pkg/inline.js`;
if (!existsSync(entry)) throw new Error('build the package first: scripts/build.sh');
const { Client } = await import(pathToFileURL(entry).href);
const { makeApi } = await import(pathToFileURL(`${root}pkg/api.js`).href);
const glue = await import(pathToFileURL(`${root}pkg/b24_openlines.js`).href);

const portal = spawn(bin, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const info = JSON.parse(await new Promise((resolve) => createInterface({ input: portal.stdout }).once('line', resolve)));
try {
  const url = `${info.webhook}${METHOD}`;
  const body = new URLSearchParams(Object.entries(PARAMS).map(([k, v]) => [k, String(v)])).toString();
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  // No pacing: the portal here has no bucket, and pacing is not what is measured.
  const client = Client.fromWebhook(info.webhook, { limits: false });
  // The JS layer over a stand-in module whose steps answer at once: the request as
  // prepared, and the result's JSON text as the module hands it (the same every time).
  const resultText = JSON.stringify((await (await fetch(url, { method: 'POST', headers, body })).json()).result);
  // The stand-in core answers `call` with the request as the module would ask for it
  // and `response` with the result, in the module's records (src/abi.rs).
  const standIn = {
    call: () => `O\x1f0\x1eS\x1f1\x1f${url}\x1f${body}\x1eW\x1f${performance.timeOrigin + performance.now() + 30000}`,
    response: () => `D\x1f0\x1f${resultText}`,
    current: () => {},
    free: () => {},
  };
  const standInClient = (core) => makeApi(async () => ({
    methods: () => 'crmMessageAdd,crmChatGet,crmChatGetLastId,crmChatUserAdd,crmChatUserDelete,crmLeadCreate',
    lastError: () => '',
    Core: { webhook: () => core },
  })).Client.fromWebhook(info.webhook);
  const layer = standInClient(standIn);
  await client.ready(); // the module is loaded, for the floor's crossings
  const floor = standInClient({
    ...standIn,
    call: () => { glue.frameReply('x:1'); return standIn.call(); },
    response: (req, status, text) => { glue.frameReply(text); return standIn.response(); },
  });
  const variants = {
    raw: async () => {
      const res = await fetch(url, { method: 'POST', headers, body });
      return res.json();
    },
    lean: async () => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 30_000);
      try {
        const res = await fetch(url, { method: 'POST', headers, body, signal: controller.signal });
        return JSON.parse(await res.text());
      } finally {
        clearTimeout(timer);
      }
    },
    layer: () => layer.call(METHOD, PARAMS),
    floor: () => floor.call(METHOD, PARAMS),
    pkg: () => client.call(METHOD, PARAMS),
    typed: () => client.crmChatGet({ crmEntityType: 'deal', crmEntity: 288 }),
  };
  if (METHOD !== 'imopenlines.crm.chat.get') delete variants.typed;
  const names = Object.keys(variants);
  for (const name of names) for (let i = 0; i < 300; i++) await variants[name](); // warm-up
  const perCall = Object.fromEntries(names.map((n) => [n, []]));
  for (let b = 0; b < BLOCKS; b++) {
    const order = names.map((_, i) => names[(i + b) % names.length]);
    for (const name of order) {
      const t0 = performance.now();
      for (let i = 0; i < CALLS; i++) await variants[name]();
      perCall[name].push(((performance.now() - t0) * 1000) / CALLS);
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  // Ratios per block (same block, adjacent in time), then their median.
  const ratio = (name) => median(perCall[name].map((t, i) => t / perCall.raw[i]));
  const rows = names.map((n) => ({ variant: n, medianMicros: Number(median(perCall[n]).toFixed(1)), ratioToRaw: Number(ratio(n).toFixed(3)) }));
  console.log(`per-call cost, ${METHOD}, ${BLOCKS} blocks x ${CALLS} sequential calls, Node ${process.version}, loopback:`);
  for (const r of rows) console.log(`  ${r.variant.padEnd(5)} ${String(r.medianMicros).padStart(8)} us/call   ${r.ratioToRaw.toFixed(3)}x raw fetch`);
  // The module's steps on their own (its own client, loaded by the package above).
  const module = glue.Core.webhook(info.webhook, '{"limits":false}', 'bench');
  const input = `j${JSON.stringify(PARAMS)}`;
  const steps = (status, text, type) => {
    const out = module.call(1, METHOD, input, 'null', performance.now());
    const req = +out.split('\x1e')[1].split('\x1f')[1];
    module.response(req, status, text, type, performance.now());
  };
  let afterIo = 0;
  let backToBack = 0;
  const ROUNDS = 2000;
  for (let i = 0; i < ROUNDS + 200; i++) {
    const res = await fetch(url, { method: 'POST', headers, body });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const t0 = performance.now();
    steps(res.status, text, type);
    const t1 = performance.now();
    steps(res.status, text, type);
    const t2 = performance.now();
    if (i >= 200) {
      afterIo += t1 - t0;
      backToBack += t2 - t1;
    }
  }
  const us = (ms) => ((ms * 1000) / ROUNDS).toFixed(1);
  console.log(`the module's steps (call + response) per call: ${us(afterIo)} us right after a request, ${us(backToBack)} us back to back`);
  // Start-up: a whole Node process that imports the package and makes one call, paired
  // with one that makes the same request with a raw fetch; the median of the per-pair
  // ratios.
  const STARTS = Number(opts.starts);
  const dir = `${root}target/bench-startup/`;
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}raw.mjs`, `const res = await fetch(process.argv[2], { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: process.argv[3] });
await res.json();
`);
  await writeFile(`${dir}pkg.mjs`, `import { Client } from ${JSON.stringify(pathToFileURL(entry).href)};
await Client.fromWebhook(process.argv[4]).call(process.argv[5], JSON.parse(process.argv[6]));
`);
  const startArgs = [url, body, info.webhook, METHOD, JSON.stringify(PARAMS)];
  const timed = (script) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [`${dir}${script}`, ...startArgs], { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${script} failed`);
    return performance.now() - t0;
  };
  timed('raw.mjs');
  timed('pkg.mjs');
  const starts = { raw: [], pkg: [], ratio: [] };
  for (let i = 0; i < STARTS; i++) {
    // Alternate which of the pair runs first.
    let p;
    let b;
    if (i % 2) {
      p = timed('pkg.mjs');
      b = timed('raw.mjs');
    } else {
      b = timed('raw.mjs');
      p = timed('pkg.mjs');
    }
    starts.raw.push(b);
    starts.pkg.push(p);
    starts.ratio.push(p / b);
  }
  const startup = { rawMs: Number(median(starts.raw).toFixed(1)), pkgMs: Number(median(starts.pkg).toFixed(1)), ratio: Number(median(starts.ratio).toFixed(3)) };
  console.log(`start-up, import + one call, ${STARTS} pairs of whole processes: raw fetch ${startup.rawMs} ms, pkg ${startup.pkgMs} ms, ${startup.ratio.toFixed(3)}x raw fetch`);
  const floorRatio = rows.find((r) => r.variant === 'floor')?.ratioToRaw;
  const pkgRatio = rows.find((r) => r.variant === 'pkg')?.ratioToRaw;
  console.log(`targets: per call within 0.05 of floor: pkg ${pkgRatio} - floor ${floorRatio} = ${(pkgRatio - floorRatio).toFixed(3)}; start-up at most 1.05x raw fetch: ${startup.ratio.toFixed(3)}`);
  const size = JSON.parse(await readFile(`${root}target/size-report.json`, 'utf8'));
  console.log(`package download: ${(size.totalGzip / 1024).toFixed(1)} KB gzipped (.wasm ${(size.wasmGzip / 1024).toFixed(1)} KB + JS ${(size.jsGzip / 1024).toFixed(1)} KB)`);
  if (existsSync(`${root}target/size-breakdown.txt`)) console.log((await readFile(`${root}target/size-breakdown.txt`, 'utf8')).trimEnd());
  await writeFile(`${root}target/bench.json`, JSON.stringify({ method: METHOD, blocks: BLOCKS, calls: CALLS, rows, startup, steps: { afterIoMicros: Number(us(afterIo)), backToBackMicros: Number(us(backToBack)) }, size }, null, 2) + '\n');
} finally {
  portal.kill('SIGTERM');
}
