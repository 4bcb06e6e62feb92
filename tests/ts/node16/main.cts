// Node CommonJS under "node16" with @types/node: require types, Node's AbortController.
import { Client } from 'b24-openlines';

export function send(webhookUrl: string): Promise<number> {
  const controller = new AbortController();
  return Client.fromWebhook(webhookUrl).crmChatGetLastId({ crmEntityType: 'deal', crmEntity: 288 }, { signal: controller.signal });
}
