// Node ESM under moduleResolution "nodenext", with neither the DOM lib nor @types/node:
// the declarations need nothing beyond es2022.
import { crmMessageAdd, isBitrix24Error, Client } from 'b24-openlines';
import { init } from 'b24-openlines/inline';

export async function send(webhookUrl: string): Promise<number | string> {
  await init();
  try {
    return await crmMessageAdd({ crmEntityType: 'lead', crmEntity: 1, userId: 1, chatId: 2, message: 'm' }, { webhookUrl, timeoutMs: 5000 });
  } catch (e) {
    if (isBitrix24Error(e)) return e.code;
    throw e;
  }
}

export const client: Client = Client.fromToken({ domain: 'portal.example', accessToken: 't', refresh: () => 'u' });
// @ts-expect-error no entry exports the glue's initSync
export { initSync } from 'b24-openlines';
