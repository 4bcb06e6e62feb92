// An older CommonJS project under moduleResolution "node10" (no "exports" support):
// "types" and the inline subpath's file still resolve.
import { crmMessageAdd, type CrmMessageAddParams } from 'b24-openlines';
import { isBitrix24Error } from 'b24-openlines/inline';

const params: CrmMessageAddParams = { crmEntityType: 'contact', crmEntity: '7', userId: 1, chatId: 2, message: 'm' };
export const send = (webhookUrl: string): Promise<number> => crmMessageAdd(params, { webhookUrl });
export const known = (e: unknown): boolean => isBitrix24Error(e) && e.outcome !== 'unknown';
