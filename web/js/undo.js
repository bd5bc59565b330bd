// The undo toast after a delete (docs/api.md: deleted records are kept
// for CHATMESH_UNDO_SECONDS, and POST .../restore brings them back):
// "Deleted · Undo (27 s)", counting down, gone when the window is over.
// The Undo button takes the focus (the deleted thing's button, or the
// dialog that asked, is gone), so Enter or Space undoes at once; it is
// never `disabled` while its request runs (aria-disabled keeps the focus).
//
// undoDeadline is DOM-free (tests/web/test_chat_controls.mjs): the window
// is measured on the server's clock (undo_until minus the reply's own
// timestamp), then laid onto this one, so a skewed clock neither hides
// the toast early nor offers an undo that is already refused.

import { icon } from './icons.js';

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

// When (this clock, ms) the undo window of a delete reply ends: its
// data.undo_until against its timestamp, both the server's. fallbackSecs
// when the reply does not say (an older gateway).
export function undoDeadline(reply, now, fallbackSecs = 30) {
  const until = Date.parse(reply && reply.data && reply.data.undo_until);
  const at = Date.parse(reply && reply.timestamp);
  const windowMs = Number.isNaN(until) ? fallbackSecs * 1000 : until - (Number.isNaN(at) ? now : at);
  return now + Math.max(0, windowMs);
}

export function secondsLeft(deadline, now) {
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

// Shows the toast. undo() runs the restore and settles when it is done; it
// reports its own failure (e.g. 410, the window passed) and never rejects.
// onGone runs once, when the toast goes (undone, dismissed, or timed out).
export function offerUndo({ text, deadline, undo, onGone = () => {} }) {
  const box = document.getElementById('notices');
  const label = el('span', { class: 'notice-text' }, text);
  const secs = el('span', { class: 'undo-seconds' });
  const button = el('button', { type: 'button', class: 'undo-button', 'data-action': 'undo' },
    document.createTextNode('Undo'), secs);
  const close = el('button', { type: 'button', class: 'icon-button notice-close', 'aria-label': 'Dismiss notice' }, icon('close'));
  const notice = el('div', { class: 'notice', 'data-kind': 'undo', role: 'status' }, label, button, close);
  let timer = null;
  let running = false;

  let over = false;
  const gone = () => {
    if (over) return;
    over = true;
    clearTimeout(timer);
    const hadFocus = notice.contains(document.activeElement);
    notice.remove();
    if (hadFocus) document.getElementById('composer-input').focus();
    onGone();
  };
  const tick = () => {
    if (!notice.isConnected) { gone(); return; } // pushed out by newer notices
    const left = secondsLeft(deadline, Date.now());
    if (left === 0) { gone(); return; }
    secs.textContent = ` (${left} s)`;
    button.setAttribute('aria-label', `Undo: ${text} (${left} seconds left)`);
    notice.title = `${text} Undo within ${left} s.`;
    timer = setTimeout(tick, Math.max(50, deadline - Date.now() - (left - 1) * 1000));
  };
  button.addEventListener('click', async () => {
    if (running) return;
    running = true;
    button.setAttribute('aria-disabled', 'true');
    button.setAttribute('aria-busy', 'true');
    try {
      await undo();
    } finally {
      gone();
    }
  });
  close.addEventListener('click', gone);
  box.append(notice);
  tick();
  if (notice.isConnected) button.focus();
  return notice;
}
