// A placement app for a CRM card: writes to the item's client through its active
// open-line dialogue, as the user looking at the card, and shows the dialogue's last
// messages. It runs inside the portal's iframe and gets its auth from the parent window
// (Client.fromFrame), like a production Bitrix24 app without BX24.js.
import { Client, isBitrix24Error } from 'b24-openlines';

const $ = (id) => document.getElementById(id);
const TYPES = { CRM_LEAD: 'lead', CRM_DEAL: 'deal', CRM_CONTACT: 'contact', CRM_COMPANY: 'company' };
const HISTORY_LIMIT = 10;

/** The CRM item this placement shows: CRM_DEAL_DETAIL_TAB + {ID: 288} -> deal 288. */
function crmItem({ placement, options }) {
  const prefix = Object.keys(TYPES).find((p) => placement.startsWith(p));
  const id = Number(options.ID ?? options.id);
  return prefix && id > 0 ? { crmEntityType: TYPES[prefix], crmEntity: id } : null;
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
/** History text is the messenger's: links and mentions come as BB-code; show their text. */
const plain = (text) => String(text ?? '').replace(/\[\/?(?:URL|USER)(?:=[^\]]*)?\]/gi, '');
const when = (date) => {
  const d = new Date(date);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
};
const errorHtml = (e) => `<code id="error-code">${escape(e.code)}</code> ${escape(e.description)}`;

function showStatus(kind, html) {
  const status = $('status');
  status.className = kind;
  status.innerHTML = html;
}

function showEmpty(title, text) {
  $('empty-title').textContent = title;
  $('empty-text').textContent = text;
  $('empty').hidden = false;
}

async function main() {
  const client = await Client.fromFrame();
  const fit = () => client.fitWindow().catch((e) => console.warn('fitWindow:', e));
  const done = (state) => {
    document.body.dataset.state = state;
    document.querySelector('main').removeAttribute('aria-busy');
    fit();
  };
  const item = crmItem(client.placement);
  if (!item) {
    $('subject').textContent = 'Open this app from a lead, deal, contact or company card.';
    return done('none');
  }
  // The app names the item itself: in a card tab the portal keeps its own page title
  // and drops setTitle, which only the main app page (DEFAULT) may use.
  const kind = item.crmEntityType;
  $('subject').textContent = `${kind[0].toUpperCase()}${kind.slice(1)} #${item.crmEntity}`;

  const chats = await client.crmChatGet(item);
  if (chats.length === 0) {
    // Only to explain the empty state: are there dialogues that are over, or none at all?
    const all = await client.crmChatGet({ ...item, activeOnly: false });
    showEmpty(all.length ? 'No active open-line dialogue' : 'No open-line chat yet', all.length
      ? `This ${kind}'s ${all.length === 1 ? 'dialogue is' : `${all.length} dialogues are`} finished or still waiting in the queue. `
        + 'You can write again as soon as the client starts a new conversation or an operator takes the queued one.'
      : `This ${kind} has no open-line chat yet. Once the client writes through a connected channel, you can answer here.`);
    return done('empty');
  }

  // One chat: say where the message goes; several: let the user pick (newest first).
  const title = (c) => c.connectorTitle || c.connectorId;
  const several = chats.length > 1;
  $('channels-legend').textContent = several ? 'Send through' : 'Goes to';
  $('chats').innerHTML = chats.map((c, i) => {
    const body = `<span class="chat-title">${escape(title(c))}</span><span class="chat-meta">chat ${c.chatId}${i === 0 && several ? ' · newest' : ''}</span>`;
    return several
      ? `<label class="chat"><input type="radio" name="chat" value="${c.chatId}" ${i === 0 ? 'checked' : ''}><span>${body}</span></label>`
      : `<div class="chat single" data-chat="${c.chatId}"><span>${body}</span></div>`;
  }).join('');
  const chosen = () => {
    const id = Number(document.querySelector('input[name=chat]:checked')?.value ?? chats[0].chatId);
    return chats.find((c) => c.chatId === id) ?? chats[0];
  };

  let shown = 0; // the newest history request wins
  async function loadHistory(chat, highlight) {
    const ticket = ++shown;
    $('history-title').textContent = `Last messages · ${title(chat)}`;
    let result;
    try {
      result = await client.call('im.dialog.messages.get', { DIALOG_ID: `chat${chat.chatId}`, LIMIT: HISTORY_LIMIT });
    } catch (e) {
      if (!isBitrix24Error(e)) throw e;
      if (ticket === shown) $('messages').innerHTML = `<li class="note error">Could not read the messages: <code>${escape(e.code)}</code> ${escape(e.description)}</li>`;
      return;
    }
    if (ticket !== shown) return;
    const names = new Map((result?.users ?? []).map((u) => [Number(u.id), u]));
    // Newest first as a rule, but a reader with unread messages gets another order: sort.
    const byId = new Map((result?.messages ?? []).map((m) => [Number(m.id), m]));
    const messages = [...byId.values()].sort((a, b) => Number(a.id) - Number(b.id)).slice(-HISTORY_LIMIT);
    $('messages').innerHTML = messages.length
      ? messages.map((m) => {
        const author = names.get(Number(m.author_id));
        const side = author?.connector ? 'in' : 'out'; // the client writes through a connector
        const note = m.params?.ATTACH?.flatMap?.((a) => a.BLOCKS ?? []).map((b) => b.MESSAGE).filter(Boolean).join(' ');
        return `<li class="msg ${side}${Number(m.id) === highlight ? ' new' : ''}" data-id="${escape(m.id)}">
          <div class="meta"><span class="author">${escape(author?.name || `User ${m.author_id}`)}</span> <time datetime="${escape(m.date)}">${escape(when(m.date))}</time></div>
          <div class="text">${escape(plain(m.text))}</div>${note ? `<div class="attach">${escape(note)}</div>` : ''}</li>`;
      }).join('')
      : '<li class="note">No messages in this dialogue yet. Yours will be the first.</li>';
    const box = $('messages');
    box.scrollTop = box.scrollHeight;
  }

  $('chats').addEventListener('change', () => {
    showStatus('', '');
    loadHistory(chosen()).finally(fit);
  });

  $('send').addEventListener('submit', async (event) => {
    event.preventDefault();
    const chat = chosen();
    // The connector names the channel; two chats on one channel need the chat itself.
    const target = chats.filter((c) => c.connectorId === chat.connectorId).length > 1
      ? { chatId: chat.chatId } : { connectorId: chat.connectorId };
    $('submit').disabled = true;
    showStatus('', 'Sending…');
    try {
      const sent = await client.sendToCrmItem({ ...item, message: $('message').value, ...target });
      showStatus('ok', `Sent to ${escape(sent.connectorTitle || title(chat))}: message <strong id="message-id">${sent.id}</strong>`
        + (sent.joined ? ' · you were added to the chat' : ''));
      $('message').value = '';
      const into = chats.find((c) => c.chatId === sent.chatId) ?? { ...chat, chatId: sent.chatId };
      await loadHistory(into, sent.id);
    } catch (e) {
      if (!isBitrix24Error(e)) throw e;
      showStatus('error', errorHtml(e));
    } finally {
      $('submit').disabled = false;
      fit();
    }
  });

  $('dialogue').hidden = false;
  await loadHistory(chosen());
  done('ready');
}

main().catch((e) => {
  $('subject').textContent = isBitrix24Error(e) ? `${e.code}: ${e.description}` : String(e);
  document.body.dataset.state = 'failed';
});
