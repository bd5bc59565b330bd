// A message's edit history, opened from its "edited" tag (view.js hook
// `history`): GET /api/messages/{id}/history drawn into #history-dialog,
// every edit oldest first with the text before and after it. The texts are
// shown as written (textContent), not rendered: the point is what changed.

import { reportError } from './actions.js';
import { $, el, formatTime } from './view.js';

function entryItem(entry) {
  const when = el('time', { class: 'history-when', text: formatTime(entry.edit_timestamp) || '' });
  if (entry.edit_timestamp) {
    when.dateTime = entry.edit_timestamp;
    when.title = entry.edit_timestamp;
  }
  return el('li', { class: 'history-entry' },
    el('p', { class: 'history-head' }, when),
    el('p', { class: 'history-label', text: 'Before' }),
    el('div', { class: 'history-text', 'data-side': 'before', text: entry.original_content ?? '' }),
    el('p', { class: 'history-label', text: 'After' }),
    el('div', { class: 'history-text', 'data-side': 'after', text: entry.edited_content ?? '' }),
  );
}

export function createHistory({ api }) {
  const dialog = $('#history-dialog');
  let opener = null;
  let seq = 0;
  dialog.addEventListener('close', () => {
    if (opener && opener.isConnected) opener.focus();
    opener = null;
  });

  // Opens the dialog for messageId; the focus goes back to `from` after it.
  async function open(messageId, from) {
    const mine = ++seq;
    let reply;
    try {
      reply = await api.history(messageId);
    } catch (err) {
      if (mine === seq && err.status !== 401) reportError('Could not load the edit history', err);
      return;
    }
    if (mine !== seq) return; // another tag was clicked meanwhile
    const entries = Array.isArray(reply.history) ? reply.history : [];
    $('#history-list').replaceChildren(...entries.map(entryItem));
    $('#history-empty').hidden = entries.length > 0;
    opener = from || null;
    if (!dialog.open) dialog.showModal();
    $('#history-close').focus();
  }

  return { open };
}
