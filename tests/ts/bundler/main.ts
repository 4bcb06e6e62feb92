// A browser app under moduleResolution "bundler", with the DOM lib: both entries, and a
// DOM AbortSignal where the package asks for one.
import { crmMessageAdd, init, type CallOptions } from 'b24-openlines';
import * as inline from 'b24-openlines/inline';

export async function send(webhookUrl: string): Promise<number> {
  await init();
  const controller = new AbortController();
  const options: CallOptions = { signal: controller.signal, timeoutMs: 1000 };
  const client = inline.Client.fromWebhook(webhookUrl);
  const id: number = await client.crmMessageAdd({ crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'm' }, options);
  await crmMessageAdd({ crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'm' },
    { webhookUrl, signal: AbortSignal.timeout(1000) });
  // @ts-expect-error a signal must be an AbortSignal
  await crmMessageAdd({ crmEntityType: 'deal', crmEntity: 1, userId: 1, chatId: 1, message: 'm' }, { webhookUrl, signal: {} });
  return id;
}

// The same declarations behind both entries: an error of one is the type of the other's.
export const same = (e: inline.Bitrix24Error): import('b24-openlines').Bitrix24Error => e;
