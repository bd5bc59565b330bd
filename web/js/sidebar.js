// The session list (docs/api.md, GET /api/sessions): each session with its
// rename and delete buttons, and "More sessions" while the server has
// another page (next_cursor). Rename is inline: Enter saves (PATCH), Esc
// cancels, a refused title says why under the field and keeps it open.
// Delete asks, then offers the undo toast (undo.js); deleting the open
// session leaves it for a new one, and its undo opens it again.
//
// The wiring (app.js) gives the state (sessions, sessionsCursor,
// renamingSession, sessionId, localOnly) and the hooks:
//   openSession(id, local)   a session picked from the list
//   leaveSession()           the open session was deleted here
//   titleChanged(id, title)  a rename took effect

import { askConfirm, reportError } from './actions.js';
import { icon } from './icons.js';
import { plainText } from './markdown.js';
import { offerUndo, undoDeadline } from './undo.js';
import { $, announce, el, formatTime } from './view.js';

export const SESSION_PAGE = 100;
const SESSION_PAGE_MAX = 1000; // GET /api/sessions's limit

// The limit that reloads the pages the list holds in one request.
export function reloadLimit(loaded) {
  return Math.min(SESSION_PAGE_MAX, Math.max(SESSION_PAGE, loaded));
}

// The list with a later page added: the sessions it already had keep
// their place (a session that moved between pages is not shown twice).
export function appendPage(sessions, page) {
  const seen = new Set(sessions.map((s) => s.session_id));
  return sessions.concat(page.filter((s) => s && !seen.has(s.session_id)));
}

export function createSidebar({ state, api, hooks }) {
  const list = $('#session-list');
  const more = $('#sessions-more');

  async function load() {
    if (!state.token) return;
    try {
      const res = await api.listSessions({ limit: reloadLimit(state.sessions.length) });
      state.sessions = Array.isArray(res.sessions) ? res.sessions : [];
      state.sessionsCursor = res.next_cursor || null;
      render();
    } catch (err) {
      if (err.status !== 401) reportError('Could not load your sessions', err);
    }
  }

  async function loadMore() {
    if (!state.sessionsCursor) return;
    more.setAttribute('aria-busy', 'true');
    try {
      const res = await api.listSessions({ limit: SESSION_PAGE, cursor: state.sessionsCursor });
      state.sessions = appendPage(state.sessions, Array.isArray(res.sessions) ? res.sessions : []);
      state.sessionsCursor = res.next_cursor || null;
      render();
    } catch (err) {
      if (err.status !== 401) reportError('Could not load more sessions', err);
    } finally {
      more.setAttribute('aria-busy', 'false');
    }
  }

  const titleOf = (s) => plainText(s.title) || (s.local ? 'New session' : 'Untitled session');

  function tool(action, label, iconName) {
    const b = el('button', { type: 'button', class: 'icon-button session-tool', 'data-action': action, 'aria-label': label, title: label });
    b.append(icon(iconName));
    return b;
  }

  function focusTool(id, action) {
    const b = list.querySelector(`[data-session-row="${CSS.escape(id)}"] button[data-action="${action}"]`);
    if (b) b.focus();
  }

  function renameForm(s) {
    const input = el('input', {
      type: 'text', class: 'session-rename-input', maxlength: '200', 'aria-label': 'Session title',
      autocomplete: 'off', spellcheck: 'false',
    });
    input.value = plainText(s.title);
    const error = el('p', { class: 'session-rename-error', role: 'alert', hidden: true });
    const form = el('form', { class: 'session-rename', 'aria-label': 'Rename the session' }, input, error);
    form.dataset.renaming = s.session_id;
    const close = () => {
      state.renamingSession = null;
      render();
      focusTool(s.session_id, 'rename-session');
    };
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        ev.preventDefault();
        ev.stopPropagation(); // not the drawer's Esc
        close();
      }
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const title = input.value.trim();
      if (title === plainText(s.title)) { close(); return; }
      input.readOnly = true;
      form.setAttribute('aria-busy', 'true');
      try {
        const res = await api.renameSession(s.session_id, title);
        const now = res.data && typeof res.data.title === 'string' ? res.data.title : title;
        const item = state.sessions.find((x) => x.session_id === s.session_id);
        if (item) item.title = now;
        hooks.titleChanged(s.session_id, now);
        announce(`Renamed to ${now}.`);
        close();
      } catch (err) {
        if (err.status === 401) return;
        error.textContent = err.message;
        error.hidden = false;
        input.setAttribute('aria-invalid', 'true');
        input.readOnly = false;
        form.removeAttribute('aria-busy');
        input.focus();
      }
    });
    return form;
  }

  async function remove(s) {
    const id = s.session_id;
    const title = titleOf(s);
    const ok = await askConfirm(`Delete the session "${title}" with all its messages? You can undo it for a few seconds.`, 'Delete');
    if (!ok) { focusTool(id, 'delete-session'); return; }
    const wasOpen = state.sessionId === id;
    let res;
    try {
      res = await api.deleteSession(id);
    } catch (err) {
      reportError('Deleting the session failed', err);
      return;
    }
    state.sessions = state.sessions.filter((x) => x.session_id !== id);
    if (wasOpen) hooks.leaveSession();
    render();
    offerUndo({
      text: `Session "${title}" deleted.`,
      deadline: undoDeadline(res, Date.now()),
      undo: async () => {
        try {
          await api.restoreSession(id);
          announce(`The session "${title}" is back.`);
          await load();
          // Back where the user was, unless a new conversation began meanwhile.
          if (wasOpen && state.localOnly) hooks.openSession(id, false);
        } catch (err) {
          reportError('Undo failed', err);
        }
      },
    });
  }

  // A row is drawn again only when what it shows changed: a refresh of
  // the list keeps the nodes (and so the focus, and what a rename field holds).
  function row(s) {
    const current = s.session_id === state.sessionId;
    const renaming = state.renamingSession === s.session_id && !s.local;
    const sig = JSON.stringify([s.title, s.message_count, s.updated_at, !!s.local, current, renaming]);
    const old = list.querySelector(`:scope > [data-session-row="${CSS.escape(s.session_id)}"]`);
    if (old && old.dataset.sig === sig) return old;
    const li = el('li', { class: 'session-row', 'data-session-row': s.session_id, 'data-sig': sig });
    if (renaming) {
      // The field stays what it was while the rename is open.
      const open = old && old.querySelector('form.session-rename');
      li.append(open || renameForm(s));
      return li;
    }
    const button = el('button', {
      type: 'button', class: 'session-item', 'data-session-id': s.session_id, 'aria-current': current ? 'true' : null,
    });
    button.append(
      el('span', { class: 'session-title', text: titleOf(s) }),
      el('span', {
        class: 'session-meta',
        text: s.local ? 'not started' : `${s.message_count ?? 0} messages · ${formatTime(s.updated_at)}`,
      }),
    );
    button.addEventListener('click', () => hooks.openSession(s.session_id, !!s.local));
    li.append(button);
    if (!s.local) {
      const rename = tool('rename-session', `Rename "${titleOf(s)}"`, 'rename');
      rename.addEventListener('click', () => {
        state.renamingSession = s.session_id;
        render();
        const input = list.querySelector('.session-rename-input');
        if (input) { input.focus(); input.select(); }
      });
      const del = tool('delete-session', `Delete "${titleOf(s)}"`, 'delete');
      del.addEventListener('click', () => remove(s));
      li.append(el('div', { class: 'session-tools' }, rename, del));
    }
    return li;
  }

  function render() {
    const items = [...state.sessions];
    // The open session not on the server yet (one deleted in another tab is not listed).
    if (state.sessionId && !state.sessionDeleted && !items.some((s) => s.session_id === state.sessionId)) {
      items.unshift({ session_id: state.sessionId, title: '', message_count: 0, updated_at: '', local: true });
    }
    items.sort((a, b) => (a.local ? -1 : b.local ? 1 : String(b.updated_at).localeCompare(String(a.updated_at))));
    if (state.renamingSession && !items.some((s) => s.session_id === state.renamingSession)) state.renamingSession = null;
    const rows = items.map(row);
    // Only the rows that changed are replaced; the others keep their place
    // (and the focus: a moved node would lose it).
    for (const node of [...list.children]) if (!rows.includes(node)) node.remove();
    let prev = null;
    for (const node of rows) {
      const expected = prev ? prev.nextElementSibling : list.firstElementChild;
      if (node !== expected) list.insertBefore(node, expected);
      prev = node;
    }
    if (!items.length) list.replaceChildren(el('li', { class: 'muted session-empty', text: 'No sessions yet.' }));
    more.hidden = !state.sessionsCursor;
  }

  more.addEventListener('click', loadMore);
  return { load, loadMore, render };
}
