// Node ESM under "nodenext" with `strict` alone (no noUncheckedIndexedAccess, no
// exactOptionalPropertyTypes) and Node's types: the settings the README's snippets are
// checked with (tests/js/readme.test.mjs), here on every TypeScript of the matrix.
import { Client } from 'b24-openlines';

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_ok?: T): void {}

// An environment variable, as it is: a missing one rejects the first call with NO_AUTH.
const client = Client.fromWebhook(process.env.B24_WEBHOOK_URL);

export async function inFrame(): Promise<void> {
  const frame = await Client.fromFrame();
  const { placement, options } = frame.placement;
  // Without noUncheckedIndexedAccess a placement option reads as a string.
  expectType<Equals<typeof options.ID, string>>();
  if (placement === 'CRM_DEAL_DETAIL_TAB') await frame.crmChatGet({ crmEntityType: 'deal', crmEntity: options.ID });
}

// A keyed batch's entries, and items built with map.
const { leads, time } = await client.batch({ leads: ['crm.lead.list', {}], time: ['server.time'] });
if (leads.ok && time.ok) console.log(time.result);
const items = [288, 290].map((id) => ({ crmEntityType: 'Deal', crmEntity: id, message: 'Your order has shipped' }));
for (const entry of await client.sendToCrmItems(items, { verify: true })) {
  if (!entry.ok) console.log(entry.error.hint ?? entry.error.description);
}
for await (const lead of client.list('crm.lead.list')) console.log(lead.ID);
