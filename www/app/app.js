// A placement app for a CRM card: lists the item's open-line chats and sends a message
// into the chosen one. It runs inside the portal's iframe and gets its auth from the
// parent window (Client.fromFrame), like a production Bitrix24 app without BX24.js.
import { Client, isBitrix24Error } from 'b24-openlines';

const $ = (id) => document.getElementById(id);
const TYPES = { CRM_LEAD: 'lead', CRM_DEAL: 'deal', CRM_CONTACT: 'contact', CRM_COMPANY: 'company' };

/** The CRM item this placement shows: CRM_DEAL_DETAIL_TAB + {ID: 288} -> deal 288. */
function crmItem({ placement, options }) {
  const prefix = Object.keys(TYPES).find((p) => placement.startsWith(p));
  const id = Number(options.ID ?? options.id);
  return prefix && id > 0 ? { crmEntityType: TYPES[prefix], crmEntity: id } : null;
}

function showStatus(kind, html) {
  const status = $('status');
  status.className = kind;
  status.innerHTML = html;
}

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

async function main() {
  const client = await Client.fromFrame();
  const item = crmItem(client.placement);
  if (!item) {
    $('subject').textContent = 'Open this app from a lead, deal, contact or company card.';
    await client.fitWindow();
    return;
  }
  // The app names the item itself: in a card tab the portal keeps its own page title
  // and drops setTitle, which only the main app page (DEFAULT) may use.
  $('subject').textContent = `${item.crmEntityType[0].toUpperCase()}${item.crmEntityType.slice(1)} #${item.crmEntity}`;
  const [chats, me] = await Promise.all([client.crmChatGet(item), client.call('profile')]);
  $('chats').innerHTML = chats.length
    ? chats.map((c, i) => `<label class="chat"><input type="radio" name="chat" value="${c.chatId}" ${i === 0 ? 'checked' : ''}>
        <span><strong>Chat ${c.chatId}</strong><br><span class="connector">${escape(c.connectorTitle || c.connectorId)}</span></span></label>`).join('')
    : '<p class="empty">This item has no active open-line chat.</p>';
  $('sender').value = me?.ID ?? '';
  $('send').hidden = chats.length === 0;

  $('send').addEventListener('submit', async (event) => {
    event.preventDefault();
    const chatId = document.querySelector('input[name=chat]:checked')?.value;
    $('submit').disabled = true;
    showStatus('', 'Sending…');
    try {
      const id = await client.crmMessageAdd({ ...item, userId: $('sender').value, chatId, message: $('message').value });
      showStatus('ok', `Sent: message <strong id="message-id">${id}</strong>`);
      $('message').value = '';
    } catch (e) {
      if (!isBitrix24Error(e)) throw e;
      showStatus('error', `<code id="error-code">${escape(e.code)}</code> ${escape(e.description)}`);
    } finally {
      $('submit').disabled = false;
      await client.fitWindow();
    }
  });
  await client.fitWindow();
}

main().catch((e) => {
  $('subject').textContent = isBitrix24Error(e) ? `${e.code}: ${e.description}` : String(e);
});
