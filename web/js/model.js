// The page's model of the open session, without the DOM: what the store
// said (normalizeMessage, reconcile) and the session's SSE events on top
// (applyEvent). Node runs it in tests/web/test_model.mjs.
//
// The state it works on (app.js owns it):
//   sessionId, messages (conversation order, normalizeMessage's shape),
//   live: Map messageId -> {taskId, progress, text, partial, startedAt, hadContent, continuing},
//   thoughts: Map messageId -> a thought process (below),
//   taskToMessage: Map taskId -> messageId, editing: messageId or null.
// A stopped answer keeps what streamed: the store stores it as the answer's
// text with metadata.finish_reason "cancelled" (regeneration_error carries
// it), so a reload shows it, marked "stopped", as the live page does.
//
// A thought process has one shape everywhere: the store's record, the API's
// metadata.thought_process, the thought_process_step event's steps and this
// model all hold {thinkingAbout, totalSteps, steps: [{step, reasoning}],
// conclusion}; the model adds done (the conclusion is reached, or the
// answer is over).
//
// applyEvent changes the state and returns the effects the view carries out,
// in order:
//   {kind: 'render', id}        redraw one message
//   {kind: 'renderAll'}         redraw the conversation (messages went)
//   {kind: 'resync', delay?}    fetch the session again (after delay ms)
//   {kind: 'refreshSessions'}   fetch the session list again
//   {kind: 'announce', text}    tell screen readers
//   {kind: 'notify', text, level}  show a notice ('info' or 'error')
//   {kind: 'sessionDeleted'}    the open session was deleted (another tab)

import { EV } from './events.js';

// A thought process from the API's or an event's fields, or null.
export function thoughtProcess(tp, done) {
  if (!tp || typeof tp !== 'object' || !Array.isArray(tp.steps)) return null;
  return {
    thinkingAbout: String(tp.thinkingAbout || ''),
    totalSteps: Number(tp.totalSteps) || 0,
    steps: tp.steps.filter((s) => s && typeof s === 'object').map((s, i) => ({
      step: Number(s.step) || i + 1,
      reasoning: String(s.reasoning || ''),
    })),
    conclusion: String(tp.conclusion || ''),
    done: done || Boolean(tp.conclusion),
  };
}

export function normalizeMessage(m) {
  const meta = m.metadata && typeof m.metadata === 'object' ? m.metadata : {};
  return {
    id: String(m.id),
    role: m.role === 'user' || m.role === 'assistant' ? m.role : 'system',
    content: typeof m.content === 'string' ? m.content : '',
    timestamp: m.timestamp || '',
    // The version the turn shows (1-based) of how many, and their ids.
    version_index: Number(m.version_index) || 1,
    version_count: Number(m.version_count) || 1,
    version_id: typeof m.version_id === 'string' ? m.version_id : String(m.id),
    version_ids: Array.isArray(m.version_ids) ? m.version_ids.map(String) : [String(m.id)],
    metadata: {
      edited: !!meta.edited,
      regenerating: !!meta.regenerating,
      regenerated: !!meta.regenerated,
      upvotes: Number(meta.upvotes) || 0,
      downvotes: Number(meta.downvotes) || 0,
      model: typeof meta.model === 'string' ? meta.model : '',
      // Why the text is not a whole answer: 'cancelled' (stopped), 'length'
      // (cut off by the model's limit), 'failed'; '' for a whole answer.
      finish_reason: FINISH_REASONS.has(meta.finish_reason) ? meta.finish_reason : '',
    },
    // A message still generating has its running thought process here,
    // done once it has its conclusion.
    thoughts: thoughtProcess(meta.thought_process, !meta.regenerating),
  };
}

export function findMessage(state, id) {
  return state.messages.find((m) => m.id === id) || null;
}

// Takes the session's messages as GET /api/sessions/{id} gave them (asked at
// issuedAt) and reconciles the streaming state with them.
export function reconcile(state, messages, issuedAt) {
  state.messages = messages.map(normalizeMessage);
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
  for (const id of [...state.live.keys()]) if (!findMessage(state, id)) state.live.delete(id);
}

// The answer being generated that a Stop would cancel: the newest message
// streaming, {messageId, taskId} (taskId null until an event names it), or null.
export function runningAnswer(state) {
  for (let i = state.messages.length - 1; i >= 0; i--) {
    const live = state.live.get(state.messages[i].id);
    if (live) return { messageId: state.messages[i].id, taskId: live.taskId || null };
  }
  return null;
}

// Drops messages (and what streams about them) from the state.
export function removeMessages(state, ids) {
  const gone = new Set(ids.map(String));
  state.messages = state.messages.filter((x) => !gone.has(x.id));
  for (const id of gone) {
    state.live.delete(id);
    state.thoughts.delete(id);
    if (state.editing === id) state.editing = null;
  }
}

function messageIdOf(state, data) {
  if (typeof data.messageId === 'string' && data.messageId) return data.messageId;
  if (data.taskId && state.taskToMessage.has(data.taskId)) return state.taskToMessage.get(data.taskId);
  return null;
}

// The message an event is about; when we do not know it yet, our copy is
// behind the store, so fetch the session again.
function eventTarget(state, data, effects) {
  const id = messageIdOf(state, data);
  if (!id) return null;
  const m = findMessage(state, id);
  if (!m) effects.push({ kind: 'resync' });
  return m;
}

function thoughtsFor(state, id) {
  let t = state.thoughts.get(id);
  if (!t) {
    t = thoughtProcess({ steps: [] }, false);
    state.thoughts.set(id, t);
  }
  return t;
}

// The event carries every step so far: a page that joined late (a reload
// mid-generation) gets the ones it missed.
function catchUpSteps(t, d) {
  const all = thoughtProcess({ steps: d.steps }, false);
  if (all && all.steps.length > t.steps.length) t.steps = all.steps;
}

// One handler per event a stream can carry (EVENT_TABLE), and the API's
// `error`: (state, data, m, now) with m the message it is about (null for
// the events about no single message), returning the effects.
// A vote recorded or withdrawn: the message's counts are the event's,
// when it is about the version this page shows.
function voteCounts(d, m) {
  if (typeof d.versionIndex === 'number' && d.versionIndex !== m.version_index) return [];
  if (typeof d.upvotes === 'number') m.metadata.upvotes = d.upvotes;
  if (typeof d.downvotes === 'number') m.metadata.downvotes = d.downvotes;
  return [{ kind: 'render', id: m.id }];
}

// The version an event says the message shows (message_regenerated, version_activated).
function versionFields(d, m) {
  if (typeof d.versionIndex === 'number') m.version_index = d.versionIndex;
  if (typeof d.versionCount === 'number') m.version_count = d.versionCount;
  if (typeof d.versionId === 'string') m.version_id = d.versionId;
}

const FINISH_REASONS = new Set(['cancelled', 'length', 'failed']);
const RELOAD_STATUSES = new Set(['message_added', 'session_renamed', 'session_restored']);

// Whether the answer can be continued (POST .../continue): it ended by
// length, cancel or failure and nothing generates it now.
export function canContinue(state, m) {
  return m.role === 'assistant' && !!m.metadata.finish_reason && !state.live.has(m.id);
}

const ABOUT_NO_MESSAGE = new Set([EV.CONNECTION_STATUS, EV.SESSION_UPDATED, EV.MESSAGE_DELETED, EV.MESSAGE_RESTORED, 'error']);

export const HANDLERS = Object.freeze({
  [EV.CONNECTION_STATUS]: (state, d) => (d.status === 'connected' ? [{ kind: 'resync', delay: 0 }] : []),

  // message_added, session_renamed (the title), session_restored (an
  // undo: everything is back) and a resync: fetch the session again.
  // session_deleted (in another tab): the page shows it is gone and keeps
  // listening, so an undo brings it back here too.
  [EV.SESSION_UPDATED]: (state, d) => {
    if (d.status === 'session_deleted') {
      removeMessages(state, state.messages.map((m) => m.id));
      return [{ kind: 'sessionDeleted' }, { kind: 'renderAll' }, { kind: 'refreshSessions' }];
    }
    return [
      ...(d.resync || RELOAD_STATUSES.has(d.status) ? [{ kind: 'resync', delay: 0 }] : []),
      { kind: 'refreshSessions' },
    ];
  },

  [EV.MESSAGE_REGENERATING]: (state, d, m, now) => {
    // A continue this page asked for (actions.js) grows the same text: not
    // a regeneration. (Its attempt again after a takeover is the same task.)
    const before = state.live.get(m.id);
    const continuing = !!(before && before.continuing && (!before.taskId || before.taskId === d.taskId));
    state.live.set(m.id, {
      taskId: d.taskId || null, progress: 0,
      text: continuing ? 'Continuing…' : m.content ? 'Regenerating…' : 'Answering…', partial: '',
      startedAt: now, hadContent: !continuing && !!m.content, continuing,
    });
    state.thoughts.delete(m.id);
    m.metadata.regenerating = true;
    return [{ kind: 'render', id: m.id }];
  },

  [EV.REGENERATION_PROGRESS]: (state, d, m, now) => {
    const live = state.live.get(m.id)
      || { taskId: d.taskId || null, progress: 0, text: '', partial: '', startedAt: now, hadContent: !!m.content };
    if (d.taskId) live.taskId = d.taskId;
    if (typeof d.progress === 'number') live.progress = d.progress;
    if (typeof d.message === 'string' && d.message) live.text = d.message;
    if (typeof d.partialContent === 'string') live.partial = d.partialContent;
    state.live.set(m.id, live);
    return [{ kind: 'render', id: m.id }];
  },

  [EV.MESSAGE_REGENERATED]: (state, d, m) => {
    // An answer that had content before is a regeneration; a fresh answer
    // is not. The resync brings the stored flag anyway.
    const live = state.live.get(m.id);
    if (live ? live.hadContent : m.content) m.metadata.regenerated = true;
    if (typeof d.content === 'string') m.content = d.content;
    versionFields(d, m);
    m.metadata.finish_reason = FINISH_REASONS.has(d.finishReason) ? d.finishReason : '';
    m.metadata.regenerating = false;
    state.live.delete(m.id);
    if (state.thoughts.has(m.id)) state.thoughts.get(m.id).done = true;
    return [
      { kind: 'render', id: m.id },
      { kind: 'announce', text: 'The answer is complete.' },
      { kind: 'resync', delay: 400 }, // pick up the stored metadata (model, markers)
      { kind: 'refreshSessions' },
    ];
  },

  [EV.REGENERATION_ERROR]: (state, d, m) => {
    const live = state.live.get(m.id);
    m.metadata.regenerating = false;
    state.live.delete(m.id);
    const cancelled = d.error === 'cancelled';
    // The text so far, when the store kept it as the answer (a stop, or a
    // failure after some text): shown as stored, with its mark.
    if (typeof d.content === 'string') {
      m.content = d.content;
      versionFields(d, m);
      m.metadata.finish_reason = FINISH_REASONS.has(d.finishReason) ? d.finishReason : '';
    }
    // A first answer is not a regeneration (hadContent: it had one before).
    const what = (live ? live.hadContent : m.content) ? 'regeneration' : 'answer';
    return [
      { kind: 'render', id: m.id },
      cancelled
        ? { kind: 'notify', text: `The ${what} was stopped.`, level: 'info' }
        : { kind: 'notify', text: `The answer could not be generated: ${d.error || 'unknown error'}.`, level: 'error' },
    ];
  },

  [EV.MESSAGE_EDITED]: (state, d, m) => {
    if (typeof d.content === 'string') m.content = d.content;
    m.metadata.edited = true;
    // An edited question is a new version of it with a new branch below:
    // the turns after it change (docs/api.md, Versions).
    if (m.role === 'user') return [{ kind: 'render', id: m.id }, { kind: 'resync', delay: 0 }];
    return [{ kind: 'render', id: m.id }];
  },

  [EV.MESSAGE_DELETED]: (state, d) => {
    const ids = Array.isArray(d.deletedMessageIds) ? d.deletedMessageIds : d.messageId ? [d.messageId] : [];
    if (!ids.length) return [{ kind: 'refreshSessions' }];
    removeMessages(state, ids);
    return [{ kind: 'renderAll' }, { kind: 'refreshSessions' }];
  },

  // An undo (here or in another tab): the messages are back, with their
  // versions and votes, so the session is fetched again.
  [EV.MESSAGE_RESTORED]: () => [{ kind: 'resync', delay: 0 }, { kind: 'refreshSessions' }],

  [EV.FEEDBACK_SUBMITTED]: (state, d, m) => voteCounts(d, m),
  [EV.FEEDBACK_WITHDRAWN]: (state, d, m) => voteCounts(d, m),

  [EV.VERSION_ACTIVATED]: (state, d, m) => {
    // This turn shows another of its versions (switched here or in another
    // tab): its text at once, its votes and model with the resync.
    if (typeof d.content === 'string') m.content = d.content;
    versionFields(d, m);
    return [{ kind: 'render', id: m.id }, { kind: 'resync', delay: 0 }];
  },

  [EV.THOUGHT_PROCESS_START]: (state, d, m) => {
    state.thoughts.set(m.id, thoughtProcess({ ...d, steps: [], conclusion: '' }, false));
    return [{ kind: 'render', id: m.id }];
  },

  [EV.THOUGHT_PROCESS_STEP]: (state, d, m) => {
    const t = thoughtsFor(state, m.id);
    t.steps.push({ step: Number(d.step) || t.steps.length + 1, reasoning: String(d.reasoning || '') });
    catchUpSteps(t, d);
    if (Number(d.totalSteps) > 0) t.totalSteps = Number(d.totalSteps);
    return [{ kind: 'render', id: m.id }];
  },

  [EV.THOUGHT_PROCESS_COMPLETE]: (state, d, m) => {
    const t = thoughtsFor(state, m.id);
    t.conclusion = String(d.conclusion || '');
    t.done = true;
    catchUpSteps(t, d);
    return [{ kind: 'render', id: m.id }];
  },

  // Not one of the gateway's (cm_event.h has none), but API.md's event for
  // a stream that reports a problem.
  error: (state, d) => [{ kind: 'notify', text: `Live updates: ${d.error || 'the server reported an error'}.`, level: 'error' }],
});

// Applies one event (type, data) of the open session; returns the effects.
// Events of another session, unknown types and events about a message the
// page does not have (that one asks for a resync) change nothing.
export function applyEvent(state, type, data, now) {
  const d = data && typeof data === 'object' ? data : {};
  if (d.sessionId && d.sessionId !== state.sessionId) return [];
  if (!Object.prototype.hasOwnProperty.call(HANDLERS, type)) return [];
  if (d.taskId && d.messageId) state.taskToMessage.set(d.taskId, d.messageId);
  if (ABOUT_NO_MESSAGE.has(type)) return HANDLERS[type](state, d, null, now);
  const effects = [];
  const m = eventTarget(state, d, effects);
  return m ? HANDLERS[type](state, d, m, now) : effects;
}
