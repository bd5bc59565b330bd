// chatmesh chat frontend: sign-in, sessions, conversation, message actions.
//
// The store is the truth. The page shows what GET /api/sessions/{id} said and
// then applies the session's SSE events on top; whenever it may have missed
// something (new connection, resync, an event about an unknown message) it
// fetches the session again. Message text is only ever rendered through
// renderMarkdown (escape first) or textContent.

import { renderMarkdown } from './markdown.js';
import { createApi } from './api.js';
import { SessionStream, readEventStream } from './stream.js';
import { icon } from './icons.js';

const TOKEN_KEY = 'chatmesh.token';
const SESSION_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

const state = {
  token: null,
  user: null,
  sessions: [],
  sessionId: null,
  localOnly: false, // the open session has no message on the server yet
  messages: [], // in conversation order, as the server gives them
  live: new Map(), // messageId -> {taskId, progress, text, partial, startedAt}
  thoughts: new Map(), // messageId -> {about, steps: [], conclusion, done}
  taskToMessage: new Map(),
  busy: new Set(), // `${action}:${messageId}` while its request runs
  editing: null, // messageId whose editor is open
  stream: null,
  loadSeq: 0,
};

const api = createApi({
  getToken: () => state.token,
  onUnauthorized: () => signOut('Your sign-in was refused or has expired. Please sign in again.'),
});

/* ---------- notices ---------- */

function notify(text, kind = 'error', timeoutMs = kind === 'error' ? 0 : 6000) {
  const box = $('#notices');
  const notice = el('div', { class: 'notice', 'data-kind': kind, role: kind === 'error' ? 'alert' : 'status' });
  notice.append(el('span', { class: 'notice-text', text }));
  const close = el('button', { type: 'button', class: 'icon-button notice-close', 'aria-label': 'Dismiss notice' }, icon('close'));
  close.addEventListener('click', () => notice.remove());
  notice.append(close);
  box.append(notice);
  while (box.children.length > 5) box.firstElementChild.remove();
  if (timeoutMs) setTimeout(() => notice.remove(), timeoutMs);
  return notice;
}

function reportError(prefix, err) {
  notify(prefix ? `${prefix}: ${err.message}` : err.message, 'error');
}

/* ---------- token and user ---------- */

function decodeJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

function readStoredToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage can be disabled; the token then lives for this page only.
  }
}

// Checks shape and expiry locally, only to give a clear message early: the
// server does the real verification on the first request.
function acceptToken(raw) {
  const token = String(raw || '').trim().replace(/^Bearer\s+/i, '');
  const claims = decodeJwt(token);
  if (!claims) {
    notify('That does not look like an access token (expected three dot-separated parts).');
    return false;
  }
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
    notify(`That token expired on ${new Date(claims.exp * 1000).toLocaleString()}. Get a new one with ./chatmesh token --user NAME.`);
    return false;
  }
  state.token = token;
  state.user = typeof claims.sub === 'string' && claims.sub ? claims.sub : '(unknown user)';
  storeToken(token);
  return true;
}

function signOut(message) {
  if (state.stream) state.stream.close();
  Object.assign(state, {
    token: null, user: null, sessions: [], sessionId: null, localOnly: false,
    messages: [], editing: null, stream: null,
  });
  state.live.clear();
  state.thoughts.clear();
  state.taskToMessage.clear();
  state.busy.clear();
  storeToken(null);
  showSignIn();
  if (message) notify(message, 'error');
}

/* ---------- views ---------- */

function showSignIn() {
  $('#app-view').hidden = true;
  $('#user-box').hidden = true;
  $('#toggle-sessions').hidden = true;
  $('#live-status').hidden = true;
  $('#signin-view').hidden = false;
  setLiveState('off');
  $('#messages').replaceChildren();
  $('#session-list').replaceChildren();
  $('#token-input').value = '';
  $('#token-input').focus();
}

function showApp() {
  $('#notices').replaceChildren(); // sign-in problems are over
  $('#signin-view').hidden = true;
  $('#app-view').hidden = false;
  $('#user-box').hidden = false;
  $('#toggle-sessions').hidden = false;
  $('#live-status').hidden = false;
  $('#user-name').textContent = state.user;
  $('#user-name').title = `Signed in as ${state.user}`;
}

function setLiveState(kind, retrySecs) {
  const node = $('#live-status');
  node.dataset.state = kind;
  node.textContent = {
    off: 'Not connected',
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    down: `Disconnected, retrying in ${retrySecs} s`,
    local: 'New session',
  }[kind] || kind;
}

/* ---------- sessions ---------- */

function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return 's_' + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

function formatTime(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

let sessionsTimer = null;
function refreshSessionsSoon() {
  clearTimeout(sessionsTimer);
  sessionsTimer = setTimeout(loadSessions, 250);
}

async function loadSessions() {
  if (!state.token) return;
  try {
    const res = await api.listSessions();
    state.sessions = Array.isArray(res.sessions) ? res.sessions : [];
    renderSessionList();
  } catch (err) {
    if (err.status !== 401) reportError('Could not load your sessions', err);
  }
}

function renderSessionList() {
  const list = $('#session-list');
  const items = [...state.sessions];
  if (state.sessionId && !items.some((s) => s.session_id === state.sessionId)) {
    items.unshift({ session_id: state.sessionId, title: '', message_count: 0, updated_at: '', local: true });
  }
  items.sort((a, b) => (a.local ? -1 : b.local ? 1 : String(b.updated_at).localeCompare(String(a.updated_at))));
  list.replaceChildren(
    ...items.map((s) => {
      const current = s.session_id === state.sessionId;
      const button = el('button', {
        type: 'button',
        class: 'session-item',
        'data-session-id': s.session_id,
        'aria-current': current ? 'true' : null,
      });
      button.append(
        el('span', { class: 'session-title', text: s.title || (s.local ? 'New session' : s.session_id) }),
        el('span', {
          class: 'session-meta',
          text: s.local ? 'not started' : `${s.message_count ?? 0} messages · ${formatTime(s.updated_at)}`,
        }),
      );
      button.addEventListener('click', () => {
        openSession(s.session_id, { local: !!s.local });
        closeSidebarOnPhone();
      });
      return el('li', {}, button);
    }),
  );
  if (!items.length) list.append(el('li', { class: 'muted session-empty', text: 'No sessions yet.' }));
}

function setSessionHash(id) {
  const hash = id ? '#session=' + encodeURIComponent(id) : '';
  if (location.hash !== hash) history.replaceState(null, '', location.pathname + location.search + hash);
}

function openSession(id, { local = false } = {}) {
  if (state.stream) state.stream.close();
  state.stream = null;
  state.sessionId = id;
  state.localOnly = local;
  state.messages = [];
  state.editing = null;
  state.live.clear();
  state.thoughts.clear();
  state.taskToMessage.clear();
  state.loadSeq += 1;
  $('#messages').replaceChildren();
  $('#session-title').textContent = local ? 'New session' : 'Loading…';
  $('#session-id').textContent = id;
  // A session that exists only here would be "not found" after a reload.
  setSessionHash(local ? null : id);
  renderSessionList();
  renderEmptyState();
  if (local) {
    setLiveState('local');
  } else {
    // Load now, and again once the stream is connected (its
    // connection_status), so nothing between the two is missed.
    resyncSoon(0);
    connectStream();
  }
}

function startNewSession() {
  openSession(newSessionId(), { local: true });
  $('#composer-input').focus();
}

function makeStream() {
  const id = state.sessionId;
  const stream = new SessionStream(id, () => state.token, {
    onEvent: (type, data) => {
      if (state.stream === stream) handleEvent(type, data);
    },
    onState: (kind, secs) => {
      if (state.stream !== stream) return;
      setLiveState(kind, secs);
      // The server closed the stream with an error: find out why (a 401 signs
      // out, a 404 says the session is gone) and catch up on state meanwhile.
      if (kind === 'down') resyncSoon(0);
    },
  });
  state.stream = stream;
  return stream;
}

function connectStream() {
  makeStream().open();
}

let resyncTimer = null;
function resyncSoon(delay = 150) {
  clearTimeout(resyncTimer);
  resyncTimer = setTimeout(() => loadSession(), delay);
}

async function loadSession() {
  const id = state.sessionId;
  if (!id || state.localOnly || !state.token) return;
  const seq = ++state.loadSeq;
  const issuedAt = Date.now();
  let res;
  try {
    res = await api.getSession(id);
  } catch (err) {
    if (seq !== state.loadSeq || id !== state.sessionId) return;
    if (err.status === 404) {
      $('#session-title').textContent = 'Session not found';
      notify('This session does not exist or is not yours.', 'error');
      if (state.stream) state.stream.close();
      state.stream = null;
      setLiveState('off');
    } else if (err.status !== 401) {
      reportError('Could not load the conversation', err);
    }
    return;
  }
  if (seq !== state.loadSeq || id !== state.sessionId) return; // a newer load or another session
  const session = res.session || {};
  state.messages = Array.isArray(session.messages) ? session.messages.map(normalizeMessage) : [];
  $('#session-title').textContent = session.title || 'Untitled session';
  // Reconcile streaming state with what the store says.
  for (const m of state.messages) {
    const live = state.live.get(m.id);
    // A finished answer's stored thought process: after a reload it is all
    // there is; while the stream runs, the stream's own is newer.
    const known = state.thoughts.get(m.id);
    if (m.thoughts && !m.metadata.regenerating && !live && (!known || known.done)) {
      state.thoughts.set(m.id, m.thoughts);
    } else if (m.thoughts && m.metadata.regenerating
        && (!known || (!known.done && known.steps.length < m.thoughts.steps.length))) {
      // A generation that was thinking before this page (or its stream)
      // began: the store has its steps so far, the stream adds the rest.
      state.thoughts.set(m.id, m.thoughts);
    }
    if (m.metadata.regenerating && !live) {
      state.live.set(m.id, { taskId: null, progress: null, text: 'Working…', partial: '', startedAt: issuedAt });
    } else if (!m.metadata.regenerating && live && live.startedAt < issuedAt - 50) {
      // Started before we asked and the store says it is over: we missed the end.
      state.live.delete(m.id);
    }
  }
  for (const id2 of [...state.live.keys()]) if (!findMessage(id2)) state.live.delete(id2);
  renderMessages();
}

/* ---------- messages ---------- */

function normalizeMessage(m) {
  const meta = m.metadata && typeof m.metadata === 'object' ? m.metadata : {};
  return {
    id: String(m.id),
    role: m.role === 'user' || m.role === 'assistant' ? m.role : 'system',
    content: typeof m.content === 'string' ? m.content : '',
    timestamp: m.timestamp || '',
    metadata: {
      edited: !!meta.edited,
      regenerating: !!meta.regenerating,
      regenerated: !!meta.regenerated,
      upvotes: Number(meta.upvotes) || 0,
      downvotes: Number(meta.downvotes) || 0,
      model: typeof meta.model === 'string' ? meta.model : '',
    },
    thoughts: storedThoughts(meta.thought_process, !meta.regenerating),
  };
}

// One thought step, a {step, reasoning} object or a bare text (the i-th),
// as the panel shows it: {title, reasoning}.
function stepView(s, i) {
  return s && typeof s === 'object'
    ? { title: `Step ${s.step ?? i + 1}`, reasoning: String(s.reasoning || '') }
    : { title: `Step ${i + 1}`, reasoning: String(s) };
}

// metadata.thought_process (docs/api.md) in the shape the thought_process_*
// events build, or null. A message still generating has its running
// thought process there, done once it has its conclusion.
function storedThoughts(tp, finished) {
  if (!tp || typeof tp !== 'object' || !Array.isArray(tp.steps)) return null;
  return {
    about: String(tp.thinkingAbout || ''),
    steps: tp.steps.map(stepView),
    conclusion: String(tp.conclusion || ''),
    done: finished || Boolean(tp.conclusion),
    total: Number(tp.totalSteps) || 0,
  };
}

function findMessage(id) {
  return state.messages.find((m) => m.id === id) || null;
}

function messageEl(id) {
  return document.querySelector(`#messages [data-message-id="${CSS.escape(id)}"]`);
}

function isBusy(action, id) {
  return state.busy.has(`${action}:${id}`);
}

function renderEmptyState() {
  $('#empty-state').hidden = state.messages.length > 0;
}

function renderMessages() {
  const list = $('#messages');
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const wanted = new Set(state.messages.map((m) => m.id));
  for (const node of [...list.children]) if (!wanted.has(node.dataset.messageId)) node.remove();
  let prev = null;
  for (const m of state.messages) {
    let node = messageEl(m.id);
    if (!node) node = buildMessage(m);
    const expected = prev ? prev.nextElementSibling : list.firstElementChild;
    if (node !== expected) list.insertBefore(node, expected);
    updateMessage(node, m);
    prev = node;
  }
  renderEmptyState();
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

function renderOne(id) {
  const m = findMessage(id);
  const node = messageEl(id);
  if (!m || !node) return;
  const list = $('#messages');
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  updateMessage(node, m);
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

function actionButton(action, label, iconName) {
  const b = el('button', { type: 'button', class: 'action', 'data-action': action, 'aria-label': label, title: label });
  b.append(icon(iconName), el('span', { class: 'action-label', text: label }));
  return b;
}

function buildMessage(m) {
  const headingId = 'h-' + m.id;
  const node = el('article', {
    class: 'message',
    'data-message-id': m.id,
    'data-role': m.role,
    'aria-labelledby': headingId,
  });
  const meta = el('header', { class: 'message-meta' },
    el('span', { class: 'role', id: headingId, text: m.role === 'user' ? 'You' : m.role === 'assistant' ? 'Assistant' : 'System' }),
    el('time', { class: 'timestamp' }),
    el('span', { class: 'marker', 'data-marker': 'edited', text: 'edited', hidden: true }),
    el('span', { class: 'marker', 'data-marker': 'regenerated', text: 'regenerated', hidden: true }),
    el('span', { class: 'marker model', 'data-marker': 'model', hidden: true }),
  );
  const content = el('div', { class: 'message-content' });
  const progress = el('div', { class: 'regeneration-progress', hidden: true },
    el('div', {
      class: 'progress-bar', role: 'progressbar', 'aria-label': 'Answer progress',
      'aria-valuemin': '0', 'aria-valuemax': '100',
    }, el('div', { class: 'progress-fill' })),
    el('div', { class: 'progress-text', text: 'Working…' }),
  );
  const thoughts = el('details', { class: 'thought-process', hidden: true },
    el('summary', { text: 'Thought process' }),
    el('p', { class: 'thinking-about' }),
    el('ol', { class: 'thought-steps' }),
    el('p', { class: 'thought-conclusion' }),
  );
  const actions = el('div', { class: 'message-actions', role: 'toolbar', 'aria-label': 'Message actions' });
  if (m.role === 'assistant') {
    const up = actionButton('upvote', 'Upvote', 'upvote');
    up.append(el('span', { class: 'vote-count', 'data-kind': 'up', text: '0' }));
    const down = actionButton('downvote', 'Downvote', 'downvote');
    down.append(el('span', { class: 'vote-count', 'data-kind': 'down', text: '0' }));
    actions.append(actionButton('regenerate', 'Regenerate', 'regenerate'), up, down);
  }
  if (m.role === 'user') actions.append(actionButton('edit', 'Edit', 'edit'));
  actions.append(actionButton('delete', 'Delete', 'delete'));
  actions.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (b && !b.disabled) runAction(b.dataset.action, m.id);
  });
  node.append(meta, content, progress, thoughts, actions);
  return node;
}

function updateMessage(node, m) {
  const time = $('.timestamp', node);
  if (time.dateTime !== m.timestamp) {
    time.dateTime = m.timestamp;
    time.textContent = formatTime(m.timestamp);
    time.title = m.timestamp;
  }
  $('[data-marker="edited"]', node).hidden = !m.metadata.edited;
  $('[data-marker="regenerated"]', node).hidden = !m.metadata.regenerated;
  const model = $('[data-marker="model"]', node);
  model.hidden = !m.metadata.model;
  model.textContent = m.metadata.model;

  const live = state.live.get(m.id);
  node.classList.toggle('is-streaming', !!live);
  node.setAttribute('aria-busy', live ? 'true' : 'false');

  // Content (or the editor, which owns the space while open).
  const content = $('.message-content', node);
  const editing = state.editing === m.id;
  content.hidden = editing;
  let editor = $('.editor', node);
  if (editing && !editor) {
    editor = buildEditor(m);
    content.after(editor);
    $('textarea', editor).focus();
  } else if (!editing && editor) {
    editor.remove();
  }
  const shown = live && live.partial ? live.partial : m.content;
  if (content.dataset.rendered !== shown || content.dataset.empty !== String(!shown)) {
    content.innerHTML = renderMarkdown(shown); // escaped by renderMarkdown
    content.dataset.rendered = shown;
    content.dataset.empty = String(!shown);
  }

  // Progress.
  const progress = $('.regeneration-progress', node);
  progress.hidden = !live;
  if (live) {
    const bar = $('.progress-bar', progress);
    const fill = $('.progress-fill', progress);
    if (live.progress === null) {
      bar.removeAttribute('aria-valuenow');
      bar.classList.add('indeterminate');
      fill.style.width = '';
    } else {
      const pct = Math.max(0, Math.min(100, Math.round(live.progress)));
      bar.setAttribute('aria-valuenow', String(pct));
      bar.classList.remove('indeterminate');
      fill.style.width = pct + '%';
    }
    $('.progress-text', progress).textContent =
      (live.text || 'Working…') + (live.progress === null ? '' : ` (${Math.round(live.progress)}%)`);
  }

  // Thought process.
  const t = state.thoughts.get(m.id);
  const details = $('.thought-process', node);
  details.hidden = !t;
  if (t) {
    const count = t.steps.length;
    const of = !t.done && t.total > count ? ` of ${t.total}` : '';
    $('summary', details).textContent = `Thought process (${count}${of} step${count === 1 && !of ? '' : 's'}${t.done ? '' : ', thinking…'})`;
    const about = $('.thinking-about', details);
    about.textContent = t.about ? `Thinking about: ${t.about}` : '';
    about.hidden = !t.about;
    const steps = $('.thought-steps', details);
    if (steps.children.length !== count) {
      steps.replaceChildren(...t.steps.map((s) => el('li', {},
        s.title ? el('strong', { text: s.title + ': ' }) : null,
        document.createTextNode(s.reasoning || ''))));
    }
    const conclusion = $('.thought-conclusion', details);
    conclusion.textContent = t.conclusion ? `Conclusion: ${t.conclusion}` : '';
    conclusion.hidden = !t.conclusion;
  }

  // Actions and votes.
  for (const b of node.querySelectorAll('.message-actions button[data-action]')) {
    const a = b.dataset.action;
    let disabled = isBusy(a, m.id) || isBusy('delete', m.id);
    if (a === 'regenerate') disabled = disabled || !!live;
    if (a === 'edit') disabled = disabled || editing;
    if (a === 'upvote' || a === 'downvote') disabled = disabled || isBusy('upvote', m.id) || isBusy('downvote', m.id);
    b.disabled = disabled;
    b.setAttribute('aria-busy', isBusy(a, m.id) ? 'true' : 'false');
  }
  const up = $('.vote-count[data-kind="up"]', node);
  const down = $('.vote-count[data-kind="down"]', node);
  if (up) {
    up.textContent = String(m.metadata.upvotes);
    up.closest('button').setAttribute('aria-label', `Upvote (${m.metadata.upvotes})`);
  }
  if (down) {
    down.textContent = String(m.metadata.downvotes);
    down.closest('button').setAttribute('aria-label', `Downvote (${m.metadata.downvotes})`);
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
    if (ev.key === 'Escape') { ev.preventDefault(); close(); }
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
      const msg = findMessage(m.id);
      if (msg) {
        msg.content = res.data && typeof res.data.new_content === 'string' ? res.data.new_content : content;
        msg.metadata.edited = true;
      }
      close();
    } catch (err) {
      reportError('Edit failed', err);
      save.disabled = false;
      cancel.disabled = false;
      textarea.readOnly = false;
    }
  });
  return form;
}

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

function runAction(action, id) {
  const m = findMessage(id);
  if (!m) return;
  switch (action) {
    case 'regenerate':
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
    case 'upvote':
    case 'downvote':
      return withBusy(action, id, async () => {
        try {
          await api.feedback(id, action);
          announce(action === 'upvote' ? 'Upvote recorded.' : 'Downvote recorded.');
          // feedback_submitted brings the counts; without a live stream, ask.
          // (Not both: a late answer could overwrite a newer event.)
          if ($('#live-status').dataset.state === 'live') return;
          const summary = await api.feedbackSummary(id).catch(() => null);
          const msg = findMessage(id);
          if (summary && summary.feedback_summary && msg) {
            msg.metadata.upvotes = Number(summary.feedback_summary.upvotes) || 0;
            msg.metadata.downvotes = Number(summary.feedback_summary.downvotes) || 0;
          }
        } catch (err) {
          reportError(action === 'upvote' ? 'Upvote failed' : 'Downvote failed', err);
        }
      });
    case 'edit':
      state.editing = id;
      renderOne(id);
      return;
    case 'delete':
      return confirmDelete(m);
  }
}

async function confirmDelete(m) {
  const idx = state.messages.indexOf(m);
  const later = idx < 0 ? 0 : state.messages.length - idx - 1;
  const text = later === 0
    ? 'Delete this message? This cannot be undone.'
    : `Delete this message? The ${later} later message${later === 1 ? '' : 's'} of this conversation will be deleted too. This cannot be undone.`;
  const ok = await askConfirm(text, 'Delete');
  if (!ok) {
    const b = messageEl(m.id) && $('button[data-action="delete"]', messageEl(m.id));
    if (b) b.focus();
    return;
  }
  await withBusy('delete', m.id, async () => {
    try {
      const res = await api.remove(m.id);
      const ids = res.data && Array.isArray(res.data.deleted_message_ids) ? res.data.deleted_message_ids : [m.id];
      removeMessages(ids);
      refreshSessionsSoon();
      $('#composer-input').focus();
    } catch (err) {
      reportError('Delete failed', err);
    }
  });
}

function removeMessages(ids) {
  const gone = new Set(ids.map(String));
  state.messages = state.messages.filter((x) => !gone.has(x.id));
  for (const id of gone) {
    state.live.delete(id);
    state.thoughts.delete(id);
    if (state.editing === id) state.editing = null;
  }
  renderMessages();
}

/* ---------- confirm dialog ---------- */

function askConfirm(text, okLabel) {
  const dialog = $('#confirm-dialog');
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener('close', onClose);
      resolve(value);
    };
    const onClose = () => done(dialog.returnValue === 'ok');
    dialog.returnValue = '';
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    $('#confirm-cancel').focus();
  });
}

/* ---------- SSE events ---------- */

function messageIdOf(data) {
  if (typeof data.messageId === 'string' && data.messageId) return data.messageId;
  if (data.taskId && state.taskToMessage.has(data.taskId)) return state.taskToMessage.get(data.taskId);
  return null;
}

// Finds the message an event is about; when we do not know it yet, our copy
// is behind the store, so fetch the session again.
function eventTarget(data) {
  const id = messageIdOf(data);
  if (!id) return null;
  const m = findMessage(id);
  if (!m) {
    resyncSoon();
    return null;
  }
  return m;
}

function thoughtsFor(id) {
  let t = state.thoughts.get(id);
  if (!t) {
    t = { about: '', steps: [], conclusion: '', done: false };
    state.thoughts.set(id, t);
  }
  return t;
}

function handleEvent(type, d) {
  if (d.sessionId && d.sessionId !== state.sessionId) return;
  if (d.taskId && d.messageId) state.taskToMessage.set(d.taskId, d.messageId);
  let m;
  switch (type) {
    case 'connection_status':
      if (d.status === 'connected') resyncSoon(0); // catch up on what happened before
      return;
    case 'message_regenerating':
      if (!(m = eventTarget(d))) return;
      state.live.set(m.id, {
        taskId: d.taskId || null, progress: 0, text: m.content ? 'Regenerating…' : 'Answering…', partial: '',
        startedAt: Date.now(), hadContent: !!m.content,
      });
      state.thoughts.delete(m.id);
      m.metadata.regenerating = true;
      renderOne(m.id);
      return;
    case 'regeneration_progress': {
      if (!(m = eventTarget(d))) return;
      const live = state.live.get(m.id)
        || { taskId: d.taskId || null, progress: 0, text: '', partial: '', startedAt: Date.now(), hadContent: !!m.content };
      if (typeof d.progress === 'number') live.progress = d.progress;
      if (typeof d.message === 'string' && d.message) live.text = d.message;
      if (typeof d.partialContent === 'string') live.partial = d.partialContent;
      state.live.set(m.id, live);
      renderOne(m.id);
      return;
    }
    case 'message_regenerated': {
      if (!(m = eventTarget(d))) return;
      // An answer that had content before is a regeneration; a fresh answer
      // is not. The resync below brings the stored flag anyway.
      const live = state.live.get(m.id);
      if (live ? live.hadContent : m.content) m.metadata.regenerated = true;
      if (typeof d.content === 'string') m.content = d.content;
      m.metadata.regenerating = false;
      state.live.delete(m.id);
      if (state.thoughts.has(m.id)) state.thoughts.get(m.id).done = true;
      renderOne(m.id);
      announce('The answer is complete.');
      resyncSoon(400); // pick up the stored metadata (model, markers)
      refreshSessionsSoon();
      return;
    }
    case 'regeneration_error':
      if (!(m = eventTarget(d))) return;
      m.metadata.regenerating = false;
      state.live.delete(m.id);
      renderOne(m.id);
      if (d.error === 'cancelled') notify('The regeneration was cancelled.', 'info');
      else notify(`The answer could not be generated: ${d.error || 'unknown error'}.`, 'error');
      return;
    case 'message_edited':
      if (!(m = eventTarget(d))) return;
      if (typeof d.content === 'string') m.content = d.content;
      m.metadata.edited = true;
      renderOne(m.id);
      return;
    case 'message_deleted': {
      const ids = Array.isArray(d.deletedMessageIds) ? d.deletedMessageIds : d.messageId ? [d.messageId] : [];
      if (ids.length) removeMessages(ids);
      refreshSessionsSoon();
      return;
    }
    case 'feedback_submitted':
      if (!(m = eventTarget(d))) return;
      if (typeof d.upvotes === 'number') m.metadata.upvotes = d.upvotes;
      if (typeof d.downvotes === 'number') m.metadata.downvotes = d.downvotes;
      renderOne(m.id);
      return;
    case 'thought_process_start':
      if (!(m = eventTarget(d))) return;
      state.thoughts.set(m.id, {
        about: String(d.thinkingAbout || ''), steps: [], conclusion: '', done: false,
        total: Number(d.totalSteps) || 0,
      });
      renderOne(m.id);
      return;
    case 'thought_process_step': {
      if (!(m = eventTarget(d))) return;
      const t = thoughtsFor(m.id);
      const title = typeof d.step === 'number' ? `Step ${d.step}` : String(d.step || '');
      t.steps.push({ title, reasoning: String(d.reasoning || '') });
      // The event carries every step so far: a page that joined late (a
      // reload mid-generation) gets the ones it missed.
      if (Array.isArray(d.steps) && d.steps.length > t.steps.length) t.steps = d.steps.map(stepView);
      renderOne(m.id);
      return;
    }
    case 'thought_process_complete': {
      if (!(m = eventTarget(d))) return;
      const t = thoughtsFor(m.id);
      t.conclusion = String(d.conclusion || '');
      t.done = true;
      if (Array.isArray(d.steps) && d.steps.length > t.steps.length) {
        t.steps = d.steps.map(stepView);
      }
      renderOne(m.id);
      return;
    }
    case 'session_updated':
      if (d.resync || d.status === 'message_added') resyncSoon(0);
      refreshSessionsSoon();
      return;
    case 'error':
      notify(`Live updates: ${d.error || 'the server reported an error'}.`, 'error');
      return;
    default:
  }
}

function announce(text) {
  const node = $('#announcer');
  node.textContent = '';
  // A fresh text node so screen readers announce repeats too.
  requestAnimationFrame(() => { node.textContent = text; });
}

/* ---------- composer ---------- */

function applyAskResult(data, query) {
  const now = new Date().toISOString();
  if (data.user_message_id && !findMessage(data.user_message_id)) {
    state.messages.push(normalizeMessage({ id: data.user_message_id, role: 'user', content: query, timestamp: now }));
  }
  if (data.assistant_message_id && !findMessage(data.assistant_message_id)) {
    state.messages.push(normalizeMessage({ id: data.assistant_message_id, role: 'assistant', content: '', timestamp: now, metadata: { regenerating: true } }));
  }
  if (data.assistant_message_id && !state.live.has(data.assistant_message_id)) {
    state.live.set(data.assistant_message_id, { taskId: data.task_id || null, progress: 0, text: 'Answering…', partial: '', startedAt: Date.now() });
  }
  if (data.task_id && data.assistant_message_id) state.taskToMessage.set(data.task_id, data.assistant_message_id);
  renderMessages();
}

// The session now exists on the server.
function promoteLocalSession(sessionId, query) {
  state.localOnly = false;
  setSessionHash(sessionId);
  $('#session-title').textContent = query.slice(0, 80);
  refreshSessionsSoon();
}

// First message of a new session. Its SSE stream cannot be opened before the
// session exists, and a fast answer could be over before it connects, so we
// ask with Accept: text/event-stream and read the events from the start in
// the POST's own response; the EventSource opens after the first event and
// continues from its id (SessionStream.accept drops the overlap).
async function askInNewSession(sessionId, query) {
  const abort = new AbortController();
  const res = await api.askStreaming(sessionId, query, abort.signal);
  if (state.sessionId !== sessionId) {
    abort.abort();
    return;
  }
  const stream = makeStream();
  promoteLocalSession(sessionId, query);
  if (res.json) {
    applyAskResult(res.json.data || {}, query);
    stream.open();
    return;
  }
  stream.attach(abort);
  setLiveState('connecting');
  resyncSoon(0);
  let opened = false;
  const openLive = () => {
    if (opened) return;
    opened = true;
    stream.open();
  };
  readEventStream(res.stream, (id, type, raw) => {
    stream.accept(id, type, raw);
    if (id) openLive();
  }).catch(() => {
    // Aborted or cut off: the EventSource carries on from the last id.
  }).finally(() => {
    openLive();
    if (state.stream === stream) resyncSoon();
  });
}

async function send(ev) {
  ev.preventDefault();
  const input = $('#composer-input');
  const button = $('#send');
  const query = input.value.trim();
  if (!query || button.disabled) return;
  if (!state.sessionId) startNewSession();
  const sessionId = state.sessionId;
  button.disabled = true;
  input.setAttribute('aria-busy', 'true');
  try {
    if (state.localOnly) {
      await askInNewSession(sessionId, query);
    } else {
      const res = await api.ask(sessionId, query);
      if (state.sessionId === sessionId) applyAskResult(res.data || {}, query);
      refreshSessionsSoon();
    }
    input.value = '';
  } catch (err) {
    if (err.name !== 'AbortError') reportError('Sending failed', err);
  } finally {
    button.disabled = false;
    input.removeAttribute('aria-busy');
    input.focus();
  }
}

/* ---------- layout ---------- */

function closeSidebarOnPhone() {
  const toggle = $('#toggle-sessions');
  if (toggle.getAttribute('aria-expanded') === 'true') {
    toggle.setAttribute('aria-expanded', 'false');
    $('#sidebar').classList.remove('open');
  }
}

/* ---------- start ---------- */

function hashParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ''));
}

function enterApp(preferredSession) {
  showApp();
  loadSessions();
  if (preferredSession && SESSION_ID_RE.test(preferredSession)) openSession(preferredSession);
  else startNewSession();
}

function boot() {
  $('#toggle-sessions').append(icon('menu'));
  $('#new-session').prepend(icon('plus'));
  $('#send').prepend(icon('send'));

  const params = hashParams();
  const session = params.get('session');
  const hashToken = params.get('token');
  if (hashToken) {
    // Take the token out of the address bar (and history) at once.
    setSessionHash(session && SESSION_ID_RE.test(session) ? session : null);
    if (acceptToken(hashToken)) return enterApp(session);
  }
  const stored = readStoredToken();
  if (stored && acceptToken(stored)) return enterApp(session);
  showSignIn();
}

$('#signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (acceptToken($('#token-input').value)) {
    $('#token-input').value = '';
    enterApp(hashParams().get('session'));
  }
});
$('#sign-out').addEventListener('click', () => {
  signOut();
  notify('Signed out.', 'info', 3000);
});
$('#new-session').addEventListener('click', () => {
  startNewSession();
  closeSidebarOnPhone();
});
$('#composer').addEventListener('submit', send);
$('#composer-input').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $('#composer').requestSubmit();
  }
});
$('#toggle-sessions').addEventListener('click', () => {
  const toggle = $('#toggle-sessions');
  const open = toggle.getAttribute('aria-expanded') !== 'true';
  toggle.setAttribute('aria-expanded', String(open));
  $('#sidebar').classList.toggle('open', open);
  if (open) ($('#sidebar [aria-current="true"]') || $('#new-session')).focus();
});
$('#confirm-dialog').addEventListener('cancel', () => { $('#confirm-dialog').returnValue = ''; });
window.addEventListener('hashchange', () => {
  const params = hashParams();
  if (params.get('token')) {
    // A sign-in link opened in this tab.
    setSessionHash(params.get('session'));
    if (acceptToken(params.get('token'))) enterApp(params.get('session'));
    return;
  }
  const id = params.get('session');
  if (state.token && id && SESSION_ID_RE.test(id) && id !== state.sessionId) openSession(id);
});
window.addEventListener('storage', (ev) => {
  // Signing out in another tab signs this one out too.
  if (ev.key === TOKEN_KEY && !ev.newValue && state.token) signOut('You signed out in another window.');
});
window.addEventListener('online', () => { if (state.stream) state.stream.kick(); });
// Sessions started in other windows have no event in this session's stream.
document.addEventListener('visibilitychange', () => { if (!document.hidden && state.token) refreshSessionsSoon(); });
$('#sidebar').addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && $('#sidebar').classList.contains('open')) {
    closeSidebarOnPhone();
    $('#toggle-sessions').focus();
  }
});

boot();
