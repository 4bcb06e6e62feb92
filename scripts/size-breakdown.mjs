// Sums twiggy's per-item sizes (CSV of `twiggy top -f csv`) by area of the code: each
// module of this crate (async code included: its state machines are named after the
// futures combinators that poll them, with this crate's function inside), the
// wasm-bindgen glue, Rust's core/alloc/std, the allocator, and data (string
// constants). Approximate where the optimizer inlined one area into another.
import { readFileSync } from 'node:fs';

const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').slice(1);
const areas = new Map();
const items = [];
let total = 0;
for (const row of rows) {
  const m = row.match(/^"((?:[^"]|"")*)",(\d+),/) ?? row.match(/^([^,]*),(\d+),/);
  if (!m) continue;
  const name = m[1].replaceAll('""', '"').replace(/\[[0-9a-f]{16}\]/g, '');
  if (name.includes('function names') || name.includes('data names')) continue;
  const size = Number(m[2]);
  const own = name.match(/b24_openlines::(\w+)/);
  let area;
  if (own) area = `crate: ${own[1]}`;
  else if (name.startsWith('data segment')) area = 'data (strings, tables)';
  else if (/futures|core::future|js_sys::futures|wasm_bindgen_futures/.test(name)) area = 'futures machinery';
  else if (/wasm_bindgen|externref|shim|__wbindgen|__wbg|import /.test(name)) area = 'wasm-bindgen glue';
  else if (/talc/.test(name)) area = 'allocator';
  else if (/js_sys|web_sys/.test(name)) area = 'js-sys / web-sys';
  else if (/core::|alloc::|std::|<core|<alloc|<std|<str|<char|<\[|<u\d|<i\d|<f64/.test(name)) area = 'core / alloc / std';
  else area = 'other';
  areas.set(area, (areas.get(area) ?? 0) + size);
  items.push([size, name]);
  total += size;
}
console.log(`module breakdown (names kept; ${total} bytes before they are stripped), by area:`);
for (const [area, size] of [...areas].sort((a, b) => b[1] - a[1])) {
  console.log(`  ${String(size).padStart(7)} ${((100 * size) / total).toFixed(1).padStart(5)}%  ${area}`);
}
console.log('largest items:');
for (const [size, name] of items.sort((a, b) => b[0] - a[0]).slice(0, 12)) {
  const short = name.length > 110 ? `${name.slice(0, 107)}...` : name;
  console.log(`  ${String(size).padStart(7)}  ${short}`);
}
