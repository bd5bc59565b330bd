// One live SSE stream per open session: GET /api/run_sse/{id}.
//
// EventSource cannot send headers, so the token travels as ?access_token=.
// On a network drop EventSource reconnects by itself and sends Last-Event-ID,
// and the server replays what we missed. When the server ends the stream with
// an HTTP error (EventSource then gives up for good) we reconnect ourselves,
// with backoff, and pass ?last_event_id= so the replay still happens.

import { EV, EVENT_TABLE } from './events.js';

// Every event the gateway's stream carries (events.js, from cm_event.h), and
// API.md's `error`.
export const EVENT_TYPES = [...EVENT_TABLE.map((e) => e.name), 'error'];

const ALWAYS_PASS = new Set([EV.CONNECTION_STATUS, EV.SESSION_UPDATED, 'error']);

// Ids are "<epoch>-<seq>". Returns <0, 0, >0, or null when not comparable.
function compareIds(a, b) {
  const pa = /^(\d+)-(\d+)$/.exec(a || '');
  const pb = /^(\d+)-(\d+)$/.exec(b || '');
  if (!pa || !pb) return null;
  if (pa[1] !== pb[1]) return null; // another store epoch: not ordered
  return Number(pa[2]) - Number(pb[2]);
}

export class SessionStream {
  constructor(sessionId, getToken, { onEvent, onState }) {
    this.sessionId = sessionId;
    this.getToken = getToken;
    this.onEvent = onEvent;
    this.onState = onState;
    this.source = null;
    this.lastEventId = '';
    this.retryTimer = null;
    this.failures = 0;
    this.closed = false;
    this.attached = null;
    this.applied = new Set(); // ids already handled (bounded)
  }

  open() {
    if (this.closed) return;
    const params = new URLSearchParams({ access_token: this.getToken() || '' });
    if (this.lastEventId) params.set('last_event_id', this.lastEventId);
    const url = `/api/run_sse/${encodeURIComponent(this.sessionId)}?${params}`;
    const source = new EventSource(url);
    this.source = source;
    this.onState('connecting');

    source.onopen = () => {
      this.failures = 0;
      this.onState('live');
    };
    source.onerror = () => {
      if (this.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused or ended the stream with an error status.
        this.source = null;
        this.scheduleReconnect();
      } else {
        this.onState('reconnecting');
      }
    };
    const dispatch = (type) => (ev) => {
      // A server `error` event is a MessageEvent; a connection failure fires
      // a plain Event under the same name and is handled by onerror.
      if (this.source !== source || !(ev instanceof MessageEvent)) return;
      this.accept(ev.lastEventId, type, ev.data);
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, dispatch(type));
  }

  // Applies one event from any of our streams (EventSource, or the POST that
  // started the session) exactly once. Ids only grow, so an id below the last
  // one applied is a replayed duplicate, and an id already applied arrived
  // twice. Status events pass always: they have no id of their own (an
  // EventSource hands them the previous event's id) and repeating them is
  // harmless.
  accept(id, type, raw) {
    if (this.closed) return;
    if (id && !ALWAYS_PASS.has(type)) {
      const cmp = compareIds(id, this.lastEventId);
      if ((cmp !== null && cmp < 0) || this.applied.has(id)) return;
      this.applied.add(id);
      if (this.applied.size > 512) this.applied.delete(this.applied.values().next().value);
      if (cmp === null || cmp > 0) this.lastEventId = id;
    }
    let data = {};
    if (raw) {
      try {
        data = JSON.parse(raw);
      } catch {
        return; // not ours to interpret
      }
    }
    if (data && typeof data === 'object') this.onEvent(type, data);
  }

  // Another stream feeding this one (see accept); closed with it.
  attach(abortController) {
    this.attached = abortController;
  }

  scheduleReconnect() {
    if (this.closed) return;
    this.failures += 1;
    const base = Math.min(30000, 1000 * 2 ** Math.min(this.failures - 1, 5));
    const delay = base / 2 + Math.random() * (base / 2);
    this.onState('down', Math.ceil(delay / 1000));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  // Reconnect now (e.g. the browser came back online).
  kick() {
    if (this.closed || (this.source && this.source.readyState === EventSource.OPEN)) return;
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
    this.open();
  }

  close() {
    this.closed = true;
    if (this.attached) this.attached.abort();
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
  }
}

// Reads a text/event-stream response body (from fetch) and calls
// onEvent(id, type, data) per event; id is '' when the event had none.
export async function readEventStream(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let id = '';
  let type = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      let line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) onEvent(id, type || 'message', data.join('\n'));
        id = '';
        type = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue; // keepalive comment
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'data') data.push(val);
      else if (field === 'event') type = val;
      else if (field === 'id') id = val;
    }
  }
}
