// The README's first example, executed as written (only the webhook URL points at the
// local portal), from the scratch project where the package is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { usePortal } from './portal.mjs';

const ctx = usePortal();

test('the README example sends the message and prints its id', async () => {
  const readme = await readFile(new URL('README.md', `file://${process.env.B24_REPO_ROOT}/`), 'utf8');
  const example = readme.match(/```js\n([\s\S]*?)```/)?.[1];
  assert.ok(example, 'the README has a js example');
  const placeholder = 'https://portal.example/rest/1/secret/';
  assert.ok(example.includes(placeholder), 'the example uses the placeholder webhook');
  const file = new URL('../readme-example.mjs', import.meta.url); // outside test/, not a test file
  await writeFile(file, example.replace(placeholder, ctx.portal.webhook));
  const { stdout } = await promisify(execFile)(process.execPath, [file.pathname], { timeout: 20_000 });
  const id = Number(stdout.match(/message (\d+) sent/)?.[1]);
  assert.ok(id > 0, stdout);
  const entry = (await ctx.portal.messages()).find((m) => m.id === id);
  assert.equal(entry?.message, 'Hello');
  assert.equal(entry?.chatId, 8773);
});
