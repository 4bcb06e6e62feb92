// @ts-check
// Plain CommonJS JavaScript, type-checked (checkJs): require() gets typed exports.
const { crmMessageAdd, isBitrix24Error } = require('b24-openlines');

/** @param {string} webhookUrl */
async function send(webhookUrl) {
  try {
    /** @type {number} */
    const id = await crmMessageAdd({ crmEntityType: 'deal', crmEntity: 288, userId: 12, chatId: 8773, message: 'm' }, { webhookUrl });
    return id;
  } catch (e) {
    if (isBitrix24Error(e)) return e.retryable;
    throw e;
  }
}
module.exports = { send };
