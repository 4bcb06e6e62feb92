// Node ESM under "node16" with @types/node (no DOM lib): Node's own AbortSignal fits.
import { crmMessageAdd } from 'b24-openlines';

export const send = (webhookUrl: string): Promise<number> => crmMessageAdd(
  { crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'm' },
  { webhookUrl, signal: AbortSignal.timeout(5000) });
