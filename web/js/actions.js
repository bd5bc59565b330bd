// A message's actions, as its toolbar asks for them (view.js hooks): edit
// (the editor form), regenerate, the votes (a click on the vote the user
// gave withdraws it), switching the version a turn shows, continuing a
// cut-off answer, delete (after the confirm dialog: only this message or
// it and the later ones; then the undo toast, undo.js). The wiring (app.js) makes it with the state and the
// API client; each action marks `${action}:${messageId}` busy while its
// request runs.

import { copyText } from './copy.js';
import { countdownNotice, limitSentence } from './limits.js';
import { findMessage, removeMessages } from './model.js';
import { offerUndo, undoDeadline } from './undo.js';
import { versionTarget } from './versions.js';
import { voteAction } from './votes.js';
import { $, announce, el, messageEl, notify, renderMessages, renderOne } from './view.js';

// An error notice; a 429's counts down its wait and goes when it is over.
export function reportError(prefix, err) {
  const text = (sentence) => (prefix ? `${prefix}: ${sentence}` : sentence);
  if (err.status === 429 && err.limit && err.retryAfter) {
    const notice = notify(text(err.message), 'error', 0);
    countdownNotice(notice, err.retryAfter, (secs) => text(limitSentence(err.limit, secs)));
    return;
  }
  notify(text(err.message), 'error');
}

// The confirm dialog: resolves to 'ok', 'only' (when onlyLabel offers
// that second choice) or '' (cancelled).
export function askConfirm(text, okLabel, onlyLabel = null) {
  const dialog = $('#confirm-dialog');
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  $('#confirm-only').hidden = !onlyLabel;
  $('#confirm-only').textContent = onlyLabel || '';
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener('close', onClose);
      resolve(value);
    };
    const onClose = () => done(['ok', 'only'].includes(dialog.returnValue) ? dialog.returnValue : '');
    dialog.returnValue = '';
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    $('#confirm-cancel').focus();
  });
}

export function createActions({ state, api, refreshSessionsSoon, resyncSoon }) {
  async function withBusy(action, id, fn) {
    const key = `${action}:${id}`;
    if (state.busy.has(key)) return;
    state.busy.add(key);
    renderOne(id);
    try {
      await fn();
    } finally {
      state.busy.delete(key);
      renderOne(id);
    }
  }

  function buildEditor(m) {
    const taId = 'edit-' + m.id;
    const cbId = 'regen-' + m.id;
    const textarea = el('textarea', { id: taId, class: 'editor-input', rows: '4' });
    textarea.value = m.content;
    const checkbox = el('input', { type: 'checkbox', id: cbId, class: 'editor-regenerate' });
    checkbox.checked = true;
    const save = el('button', { type: 'submit', class: 'primary', 'data-action': 'save-edit', text: 'Save' });
    const cancel = el('button', { type: 'button', 'data-action': 'cancel-edit', text: 'Cancel' });
    const form = el('form', { class: 'editor', 'aria-label': 'Edit message' },
      el('label', { for: taId, class: 'visually-hidden', text: 'Message text' }),
      textarea,
      el('div', { class: 'editor-row' },
        el('label', { class: 'checkbox' }, checkbox, document.createTextNode(' Regenerate the answer')),
        el('span', { class: 'spacer' }),
        cancel,
        save,
      ),
    );
    const close = () => {
      state.editing = null;
      renderOne(m.id);
      const b = messageEl(m.id) && $('button[data-action="edit"]', messageEl(m.id));
      if (b) b.focus();
    };
    cancel.addEventListener('click', close);
    form.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); close(); }
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const content = textarea.value.trim();
      if (!content) { notify('A message cannot be empty.'); textarea.focus(); return; }
      save.disabled = true;
      cancel.disabled = true;
      textarea.readOnly = true;
      try {
        const res = await api.edit(m.id, content, checkbox.checked);
        const msg = findMessage(state, m.id);
        if (msg) {
          msg.content = res.data && typeof res.data.new_content === 'string' ? res.data.new_content : content;
          msg.metadata.edited = true;
        }
        close();
        // A question's edit is a new version with a new branch below it.
        if (m.role === 'user') resyncSoon(0);
      } catch (err) {
        reportError('Edit failed', err);
        save.disabled = false;
        cancel.disabled = false;
        textarea.readOnly = false;
      }
    });
    return form;
  }

  function regenerate(id) {
    return withBusy('regenerate', id, async () => {
      try {
        const res = await api.regenerate(id);
        if (!state.live.has(id)) {
          state.live.set(id, {
            taskId: res.data && res.data.task_id, progress: 0, text: 'Queued…', partial: '',
            startedAt: Date.now(), hadContent: true,
          });
        }
        if (res.data && res.data.task_id) state.taskToMessage.set(res.data.task_id, id);
      } catch (err) {
        reportError('Regenerate failed', err);
      }
    });
  }

  // Both votes are busy together: one request about this message's vote at a time.
  function vote(m, clicked) {
    const todo = voteAction(m, clicked);
    return withBusy('vote', m.id, async () => {
      try {
        if (todo === 'withdraw') {
          const res = await api.withdrawFeedback(m.id);
          const sum = res.feedback_summary;
          const msg = findMessage(state, m.id);
          if (sum && msg) {
            msg.metadata.upvotes = Number(sum.upvotes) || 0;
            msg.metadata.downvotes = Number(sum.downvotes) || 0;
          }
          announce('Vote removed.');
          return;
        }
        await api.feedback(m.id, clicked, m.version_index);
        announce(clicked === 'upvote' ? 'Upvote recorded.' : 'Downvote recorded.');
        // feedback_submitted brings the counts; without a live stream, ask.
        // (Not both: a late answer could overwrite a newer event.)
        if ($('#live-status').dataset.state === 'live') return;
        const summary = await api.feedbackSummary(m.id).catch(() => null);
        const msg = findMessage(state, m.id);
        if (summary && summary.feedback_summary && msg) {
          msg.metadata.upvotes = Number(summary.feedback_summary.upvotes) || 0;
          msg.metadata.downvotes = Number(summary.feedback_summary.downvotes) || 0;
        }
      } catch (err) {
        const what = todo === 'withdraw' ? 'Removing the vote' : clicked === 'upvote' ? 'Upvote' : 'Downvote';
        reportError(`${what} failed`, err);
      }
    });
  }

  // Shows the turn's previous or next version; the store keeps the choice
  // and tells the session's other tabs (version_activated).
  function switchVersion(m, step) {
    const n = versionTarget(m, step);
    if (n === null) return;
    return withBusy('version', m.id, async () => {
      try {
        const res = await api.activateVersion(m.id, n);
        const d = res.data || {};
        const msg = findMessage(state, m.id);
        if (msg && d.changed !== false) {
          if (typeof d.content === 'string') msg.content = d.content;
          if (typeof d.version_index === 'number') msg.version_index = d.version_index;
          if (typeof d.version_count === 'number') msg.version_count = d.version_count;
          if (typeof d.version_id === 'string') msg.version_id = d.version_id;
          if (Array.isArray(d.version_ids)) msg.version_ids = d.version_ids.map(String);
        }
        announce(`Version ${n} of ${msg ? msg.version_count : n}.`);
        resyncSoon(0); // that version's votes, model and markers
      } catch (err) {
        reportError('Switching the version failed', err);
      }
    });
  }

  // Delete: only this message, or it and every later one (docs/api.md,
  // ?scope=message|following), then the undo toast. A question with more
  // than one version has branches under it: only "this and later".
  async function confirmDelete(m) {
    const idx = state.messages.indexOf(m);
    const later = idx < 0 ? 0 : state.messages.length - idx - 1;
    const canOnly = later > 0 && !(m.role === 'user' && m.version_count > 1);
    const laterText = `the ${later} later message${later === 1 ? '' : 's'} of this conversation`;
    let text = 'Delete this message? You can undo it for a few seconds.';
    if (later > 0 && canOnly) text = `Delete only this message, or it and ${laterText}? You can undo it for a few seconds.`;
    else if (later > 0) text = `Delete this message? This question has other versions, so ${laterText} will be deleted too. You can undo it for a few seconds.`;
    const choice = await askConfirm(text, later > 0 ? 'This and later' : 'Delete', canOnly ? 'Only this' : null);
    if (!choice) {
      const b = messageEl(m.id) && $('button[data-action="delete"]', messageEl(m.id));
      if (b) b.focus();
      return;
    }
    const scope = choice === 'only' || later === 0 ? 'message' : 'following';
    await withBusy('delete', m.id, async () => {
      try {
        const res = await api.remove(m.id, scope);
        const ids = res.data && Array.isArray(res.data.deleted_message_ids) ? res.data.deleted_message_ids : [m.id];
        removeMessages(state, ids);
        renderMessages();
        refreshSessionsSoon();
        $('#composer-input').focus();
        const sessionId = state.sessionId;
        offerUndo({
          text: ids.length === 1 ? 'Message deleted.' : `${ids.length} messages deleted.`,
          deadline: undoDeadline(res, Date.now()),
          undo: async () => {
            try {
              await api.restore(m.id);
              announce(ids.length === 1 ? 'The message is back.' : 'The messages are back.');
              // Every tab gets message_restored; this one may be elsewhere now.
              if (state.sessionId === sessionId) resyncSoon(0);
              refreshSessionsSoon();
            } catch (err) {
              reportError('Undo failed', err);
            }
          },
        });
      } catch (err) {
        reportError('Delete failed', err);
      }
    });
  }

  // Continue an answer that was stopped, cut off by length, or failed: the
  // same message (and version) grows from its stored text.
  function continueAnswer(id) {
    return withBusy('continue', id, async () => {
      try {
        const res = await api.continueAnswer(id);
        const taskId = res.data && res.data.task_id;
        const live = state.live.get(id);
        if (live) {
          // Its message_regenerating came first.
          Object.assign(live, { continuing: true, hadContent: false, text: 'Continuing…' });
        } else {
          state.live.set(id, {
            taskId: taskId || null, progress: 0, text: 'Continuing…', partial: '',
            startedAt: Date.now(), hadContent: false, continuing: true,
          });
        }
        if (taskId) state.taskToMessage.set(taskId, id);
        // The button goes while the answer grows: the focus goes to Stop.
        if (!document.activeElement || document.activeElement === document.body) $('#send').focus();
      } catch (err) {
        reportError('Continue failed', err);
      }
    });
  }

  function runAction(action, id) {
    const m = findMessage(state, id);
    if (!m) return undefined;
    switch (action) {
      case 'regenerate': return regenerate(id);
      case 'continue': return continueAnswer(id);
      case 'upvote':
      case 'downvote': return vote(m, action);
      case 'version-prev': return switchVersion(m, -1);
      case 'version-next': return switchVersion(m, 1);
      case 'edit':
        state.editing = id;
        renderOne(id);
        return undefined;
      case 'delete': return confirmDelete(m);
      case 'copy': return copyText(m.content, messageEl(id) && $('button[data-action="copy"]', messageEl(id)));
      default: return undefined;
    }
  }

  return { runAction, buildEditor };
}
