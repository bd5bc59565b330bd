// HTTP client for the gateway's JSON API (docs/api.md).
//
// Every mutation carries an Idempotency-Key, one per user action
// (web/js/idem.js): a double click or a repeat within seconds is one
// action, done once by the server.
//
// Every failure becomes an ApiError whose message is a sentence for a person:
// the server's own `error` text when it sent the error envelope, otherwise a
// description of what went wrong on the way. 429 names the limit it hit
// and the wait (limits.js; err.limit), 503 the wait.

import { createIdemKeys } from './idem.js';
import { limitOf, limitSentence } from './limits.js';

export class ApiError extends Error {
  constructor(message, { status = 0, code = 'network_error', retryAfter = null, limit = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.limit = limit;
  }
}

function retryAfterSeconds(response) {
  const raw = response.headers.get('Retry-After');
  if (!raw) return null;
  const secs = Number(raw);
  if (Number.isFinite(secs)) return Math.max(0, Math.ceil(secs));
  const when = Date.parse(raw); // the HTTP-date form
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

function describe(status, body, retryAfter, limit) {
  if (status === 429 && (!body || body.code === 'rate_limited' || !body.code)) return limitSentence(limit, retryAfter);
  let text = body && typeof body.error === 'string' && body.error ? body.error : '';
  if (!text) {
    text = {
      400: 'The request was not accepted.',
      401: 'Your sign-in is missing or has expired.',
      404: 'Not found (or not yours).',
      409: 'That is already in progress.',
      413: 'That is too large.',
      415: 'The server refused the request format.',
      422: 'A value is out of range.',
      429: 'Too many requests.',
      503: 'A backend service is unavailable.',
      504: 'The backend did not answer in time.',
    }[status] || `The server answered with status ${status}.`;
  }
  if (status === 503 && retryAfter !== null) {
    text = text.replace(/\s*$/, '') + ` Try again in ${retryAfter} s.`;
  }
  return text;
}

export function createApi({ getToken, onUnauthorized }) {
  const idem = createIdemKeys();
  async function send(method, path, body, accept = 'application/json', signal = undefined) {
    const headers = { Accept: accept };
    const token = getToken();
    if (token) headers.Authorization = 'Bearer ' + token;
    if (method !== 'GET') headers['Idempotency-Key'] = idem.keyFor(method, path, body);
    const init = { method, headers, cache: 'no-store', signal };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    try {
      return await fetch(path, init);
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ApiError('Cannot reach the server. Check your connection and try again.');
    }
  }

  async function readJson(response, limit) {
    let data = null;
    const type = response.headers.get('Content-Type') || '';
    if (type.includes('json')) {
      try { data = await response.json(); } catch { data = null; }
    }
    if (!response.ok || (data && data.success === false)) {
      const retryAfter = retryAfterSeconds(response);
      const status = response.ok ? 400 : response.status;
      const err = new ApiError(describe(status, data, retryAfter, limit), {
        status,
        code: (data && data.code) || 'http_' + status,
        retryAfter,
        limit: status === 429 ? limit : null,
      });
      if (status === 401 && onUnauthorized) onUnauthorized(err);
      throw err;
    }
    if (!data) throw new ApiError('The server sent an answer this page cannot read.', { status: response.status, code: 'bad_response' });
    return data;
  }

  async function request(method, path, body) {
    return readJson(await send(method, path, body), limitOf(method, path, body));
  }

  // A delete and its undo are two user actions each time: once one of them
  // is done, the next of the other is a new action (idem.js, forget), so a
  // delete after an undo deletes again instead of replaying the first.
  async function undoable(method, path, undoMethod, undoPath) {
    const res = await request(method, path);
    idem.forget(undoMethod, undoPath);
    return res;
  }

  const enc = encodeURIComponent;
  const msgPath = (id) => `/api/messages/${enc(id)}`;
  const sessionPath = (id) => `/api/sessions/${enc(id)}`;
  return {
    // One page of the session list: {sessions, next_cursor}.
    listSessions: ({ limit, cursor } = {}) => {
      const q = new URLSearchParams();
      if (limit) q.set('limit', String(limit));
      if (cursor) q.set('cursor', cursor);
      const query = q.toString();
      return request('GET', '/api/sessions' + (query ? '?' + query : ''));
    },
    renameSession: (id, title) => request('PATCH', sessionPath(id), { title }),
    deleteSession: (id) => undoable('DELETE', sessionPath(id), 'POST', `${sessionPath(id)}/restore`),
    restoreSession: (id) => undoable('POST', `${sessionPath(id)}/restore`, 'DELETE', sessionPath(id)),
    exportSession: (id, format) => request('GET', `${sessionPath(id)}/export?format=${enc(format)}`),
    getSession: (id) => request('GET', `/api/sessions/${enc(id)}`),
    ask: (sessionId, query) => request('POST', `/api/run_sse/${enc(sessionId)}`, { query }),
    // Asks and streams the session's events from the start in the same
    // response (API.md: POST run_sse with Accept: text/event-stream). Resolves
    // to {stream: Response} or, from a server that answers JSON anyway, {json}.
    askStreaming: async (sessionId, query, signal) => {
      const response = await send('POST', `/api/run_sse/${enc(sessionId)}`, { query }, 'text/event-stream', signal);
      const type = response.headers.get('Content-Type') || '';
      if (response.ok && type.startsWith('text/event-stream') && response.body) return { stream: response };
      return { json: await readJson(response, 'answers') };
    },
    regenerate: (id) => request('POST', `/api/messages/${enc(id)}/regenerate`, {}),
    edit: (id, content, triggerRegeneration) =>
      request('PUT', `/api/messages/${enc(id)}`, { content, trigger_regeneration: triggerRegeneration }),
    // scope: 'message' (only it) or 'following' (it and every later turn).
    remove: (id, scope) => undoable('DELETE', `${msgPath(id)}?scope=${enc(scope)}`, 'POST', `${msgPath(id)}/restore`),
    restore: (id) => undoable('POST', `${msgPath(id)}/restore`, 'DELETE', msgPath(id)),
    continueAnswer: (id) => request('POST', `${msgPath(id)}/continue`),
    // version: the one the page shows, so the vote is on what the user saw.
    feedback: (id, type, version) =>
      request('POST', `/api/messages/${enc(id)}/feedback`, { feedback_type: type, version }),
    feedbackSummary: (id) => request('GET', `/api/messages/${enc(id)}/feedback`),
    history: (id) => request('GET', `/api/messages/${enc(id)}/history`),
    withdrawFeedback: (id) => request('DELETE', `/api/messages/${enc(id)}/feedback`),
    activateVersion: (id, n) => request('POST', `/api/messages/${enc(id)}/versions/${n}/activate`),
    cancel: (taskId) => request('POST', `/api/messages/tasks/${enc(taskId)}/cancel`),
  };
}
