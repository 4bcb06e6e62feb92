// Node CommonJS (.cts compiles to require) under "nodenext": the require entry's own types.
import { crmMessageAdd, Client, type Bitrix24Error } from 'b24-openlines';
import inline = require('b24-openlines/inline');

export async function send(webhookUrl: string): Promise<number> {
  const client = Client.fromWebhook(webhookUrl, { timeoutMs: 5000 });
  await inline.init();
  return crmMessageAdd({ crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'm' }, { client });
}

export const code = (e: Bitrix24Error): string => e.code;
