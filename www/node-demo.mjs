// The README's example, run from Node against the local portal: starts the portal,
// sends the message through the built package, prints the id and the portal's ledger
// entry for it. Then serves the demo placement app (www/app) and prints the address of
// the portal's deal card with the app inside, until Ctrl+C (or at once with --once).
// Run it with scripts/demo.sh, which builds both first.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const portalBin = process.env.B24_PORTAL_BIN;
if (!portalBin) throw new Error('B24_PORTAL_BIN is not set: run scripts/demo.sh');
const { sendToCrmItem, isBitrix24Error } = await import(new URL('../pkg/inline.js', import.meta.url));
const { serveDemo } = await import(new URL('./serve.mjs', import.meta.url));
const once = process.argv.includes('--once');

const portal = spawn(portalBin, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const [line] = await createInterface({ input: portal.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value]);
const { url, webhook } = JSON.parse(line);
console.log(`local portal at ${url}`);

try {
  const params = { crmEntityType: 'deal', crmEntity: 288, message: 'Hello' };
  console.log(`sendToCrmItem(${JSON.stringify(params)}, { webhookUrl })`);
  const sent = await sendToCrmItem(params, { webhookUrl: webhook });
  console.log(`sent: ${JSON.stringify(sent)}`);
  const ledger = await (await fetch(`${url}/_portal/messages`)).json();
  console.log('portal ledger entry:', JSON.stringify(ledger.find((m) => m.id === sent.id)));
  try {
    // Deal 291's dialogues are all finished or closing.
    await sendToCrmItem({ ...params, crmEntity: 291 }, { webhookUrl: webhook });
  } catch (e) {
    if (!isBitrix24Error(e)) throw e;
    console.log(`and an error, as callers see it: ${e.code}: ${e.description}`);
  }
  if (!once) {
    const demo = await serveDemo(0);
    const card = `${url}/_portal/frame?app=${encodeURIComponent(`${demo.origin}/`)}`
      + `&placement=CRM_DEAL_DETAIL_TAB&options=${encodeURIComponent('{"ID":"288"}')}&userId=12`;
    console.log(`\nthe demo app inside the portal's deal card (open in a browser):\n  ${card}`);
    console.log('press Ctrl+C to stop');
    await new Promise((resolve) => process.once('SIGINT', resolve));
    demo.close();
  }
} finally {
  portal.kill('SIGTERM');
}
