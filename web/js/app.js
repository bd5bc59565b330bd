// chatmesh chat frontend's wiring: sign-in, sessions, message actions, and
// the session's stream, joining auth.js (the token), model.js (the state and
// its events, no DOM), view.js (the DOM) and api.js / stream.js (the server).
//
// The session list with its rename, delete and paging is sidebar.js's; the
// export buttons export.js's; the undo toasts undo.js's.
//
// The store is the truth. The page shows what GET /api/sessions/{id} said and
// then applies the session's SSE events on top; whenever it may have missed
// something (new connection, resync, an event about an unknown message) it
// fetches the session again.

import { createApi } from './api.js';
import { TOKEN_KEY, checkToken, readStoredToken, storeToken } from './auth.js';
import { icon } from './icons.js';
import { createActions, reportError } from './actions.js';
import { createDraft } from './draft.js';
import { createExport } from './export.js';
import { createHistory } from './history.js';
import { plainText } from './markdown.js';
import { applyEvent, findMessage as findIn, normalizeMessage, reconcile } from './model.js';
import { createSidebar } from './sidebar.js';
import { createStop } from './stop.js';
import { SessionStream, readEventStream } from './stream.js';
import {
  $, announce, bindView, notify, renderEmptyState, renderMessages, renderOne,
  setLiveState, showApp, showSignIn,
} from './view.js';

const SESSION_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

const state = {
  token: null,
  user: null,
  sessions: [],
  sessionsCursor: null, // next_cursor of the list's last page (sidebar.js)
  renamingSession: null, // the session whose title is being edited
  sessionId: null,
  localOnly: false, // the open session has no message on the server yet
  sessionDeleted: false, // the open session was deleted in another tab
  messages: [], // in conversation order, as the server gives them
  live: new Map(), // messageId -> {taskId, progress, text, partial, startedAt} (model.js)
  thoughts: new Map(), // messageId -> thought process (model.js)
  taskToMessage: new Map(),
  busy: new Set(), // `${action}:${messageId}` while its request runs
  editing: null, // messageId whose editor is open
  stream: null,
  loadSeq: 0,
};

const draft = createDraft({ input: $('#composer-input'), note: $('#draft-kept') });
const api = createApi({
  getToken: () => state.token,
  onUnauthorized: () => {
    draft.keep();
    signOut('Your sign-in was refused or has expired. Please sign in again: your unsent message is kept.');
  },
});

/* ---------- token and user ---------- */

// Signs in with a token that passes the local checks (auth.js).
function acceptToken(raw) {
  const checked = checkToken(raw, Date.now());
  if (checked.error) {
    notify(checked.error);
    return false;
  }
  state.token = checked.token;
  state.user = checked.user;
  storeToken(checked.token);
  return true;
}

function signOut(message) {
  if (state.stream) state.stream.close();
  Object.assign(state, {
    token: null, user: null, sessions: [], sessionsCursor: null, renamingSession: null,
    sessionId: null, localOnly: false, sessionDeleted: false, messages: [], editing: null, stream: null,
  });
  state.live.clear();
  state.thoughts.clear();
  state.taskToMessage.clear();
  state.busy.clear();
  storeToken(null);
  showSignIn();
  if (message) notify(message, 'error');
}

/* ---------- sessions ---------- */

function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return 's_' + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

let sessionsTimer = null;
function refreshSessionsSoon() {
  clearTimeout(sessionsTimer);
  sessionsTimer = setTimeout(() => sidebar.load(), 250);
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
  state.sessionDeleted = false;
  state.messages = [];
  state.editing = null;
  state.live.clear();
  state.thoughts.clear();
  state.taskToMessage.clear();
  state.loadSeq += 1;
  $('#messages').replaceChildren();
  $('#session-title').textContent = local ? 'New session' : 'Loading…';
  // A session that exists only here would be "not found" after a reload.
  setSessionHash(local ? null : id);
  sidebar.render();
  exporter.sync();
  renderEmptyState();
  stopper.sync();
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
    if (err.status === 404 && state.sessionDeleted) {
      // Deleted in another tab: its stream stays, so an undo there shows here.
      return;
    }
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
  state.sessionDeleted = false;
  exporter.sync();
  const session = res.session || {};
  $('#session-title').textContent = plainText(session.title) || 'Untitled session';
  reconcile(state, Array.isArray(session.messages) ? session.messages : [], issuedAt);
  renderMessages();
}

/* ---------- messages ---------- */

function findMessage(id) {
  return findIn(state, id);
}

const actions = createActions({ state, api, refreshSessionsSoon, resyncSoon: (delay) => resyncSoon(delay) });
const exporter = createExport({ state, api });
const sidebar = createSidebar({
  state,
  api,
  hooks: {
    openSession: (id, local) => {
      openSession(id, { local });
      closeSidebarOnPhone();
    },
    leaveSession: () => startNewSession(),
    titleChanged: (id, title) => {
      if (id === state.sessionId) $('#session-title').textContent = plainText(title) || 'Untitled session';
    },
  },
});
const stopper = createStop({ state, api });
const editHistory = createHistory({ api });

/* ---------- SSE events ---------- */

// Applies one of the session's events (model.js) and carries out its effects.
function handleEvent(type, data) {
  for (const effect of applyEvent(state, type, data, Date.now())) {
    switch (effect.kind) {
      case 'render': renderOne(effect.id); break;
      case 'renderAll': renderMessages(); break;
      case 'resync': resyncSoon(effect.delay); break;
      case 'refreshSessions': refreshSessionsSoon(); break;
      case 'announce': announce(effect.text); break;
      case 'notify': notify(effect.text, effect.level); break;
      case 'sessionDeleted':
        state.sessionDeleted = true;
        $('#session-title').textContent = 'Deleted session';
        exporter.sync();
        notify('This session was deleted in another window. If it is undone there, it comes back here.', 'info');
        break;
      default:
    }
  }
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
  exporter.sync();
  setSessionHash(sessionId);
  $('#session-title').textContent = plainText(query.slice(0, 80));
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
  if (stopper.isRunning()) {
    stopper.stop();
    return;
  }
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
    // A 401 signed out already, saying so and keeping the draft.
    if (err.name !== 'AbortError' && err.status !== 401) reportError('Sending failed', err);
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
  showApp(state.user);
  sidebar.load();
  if (preferredSession && SESSION_ID_RE.test(preferredSession)) openSession(preferredSession);
  else startNewSession();
  draft.restore();
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
  draft.discard();
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
    // Enter sends; it never stops an answer (that is the button, or Esc).
    if (!stopper.isRunning()) $('#composer').requestSubmit();
  }
  if (ev.key === 'Escape' && stopper.isRunning()) {
    ev.preventDefault();
    stopper.stop();
  }
});
// Esc also stops from the conversation (not from an editor, the dialog or
// the open session drawer, whose Esc is their own).
document.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Escape' || ev.defaultPrevented || !stopper.isRunning()) return;
  if (ev.target.closest && ev.target.closest('form, dialog, #sidebar.open')) return;
  ev.preventDefault();
  stopper.stop();
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

bindView(state, {
  action: actions.runAction,
  buildEditor: actions.buildEditor,
  rendered: stopper.sync,
  history: editHistory.open,
});
boot();
