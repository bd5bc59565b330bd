// The session tools' DOM-free logic under node: the undo window of a
// delete (web/js/undo.js), the session list's pages (web/js/sidebar.js),
// the export files (web/js/export.js), Continue (web/js/model.js) and the
// session_updated statuses another tab sends (rename, delete, restore).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EV } from '../../web/js/events.js';
import { applyEvent, canContinue, reconcile } from '../../web/js/model.js';
import { exportFile } from '../../web/js/export.js';
import { appendPage, reloadLimit, SESSION_PAGE } from '../../web/js/sidebar.js';
import { secondsLeft, undoDeadline } from '../../web/js/undo.js';

const SID = 's_tools';
const state = () => ({
  sessionId: SID, messages: [], live: new Map(), thoughts: new Map(),
  taskToMessage: new Map(), editing: null,
});
const msg = (id, role, over = {}) => ({
  id, role, content: `${id} text`, timestamp: '', ...over,
  metadata: { edited: false, regenerating: false, regenerated: false, upvotes: 0, downvotes: 0, ...(over.metadata || {}) },
});

test('the undo window is the server\'s, laid onto this clock', () => {
  const reply = { timestamp: '2026-12-04T10:00:00.000Z', data: { undo_until: '2026-12-04T10:00:30.000Z' } };
  // This clock is 5 minutes behind the server's: still 30 s from now.
  const now = Date.parse('2026-12-04T09:55:00.000Z');
  assert.equal(undoDeadline(reply, now), now + 30000);
  assert.equal(secondsLeft(now + 30000, now), 30);
  assert.equal(secondsLeft(now + 30000, now + 29001), 1);
  assert.equal(secondsLeft(now + 30000, now + 30000), 0);
  assert.equal(secondsLeft(now + 30000, now + 99999), 0);
  // Without undo_until: the default window; an expired one: none left.
  assert.equal(undoDeadline({ data: {} }, 1000, 30), 31000);
  assert.equal(undoDeadline({ timestamp: reply.data.undo_until, data: { undo_until: reply.timestamp } }, 1000), 1000);
});

test('the session list reloads the pages it holds and adds a page without doubles', () => {
  assert.equal(reloadLimit(0), SESSION_PAGE);
  assert.equal(reloadLimit(250), 250);
  assert.equal(reloadLimit(5000), 1000);
  const first = [{ session_id: 'a' }, { session_id: 'b' }];
  const next = appendPage(first, [{ session_id: 'b' }, { session_id: 'c' }, null]);
  assert.deepEqual(next.map((s) => s.session_id), ['a', 'b', 'c']);
  assert.equal(first.length, 2, 'the page before is not changed');
});

test('the JSON export is the whole reply without the envelope flag; Markdown its text', () => {
  const reply = { success: true, session_id: SID, format: 'json', exported_at: 'x', session: { messages: [{ versions: [{}, {}] }] } };
  const json = exportFile(SID, 'json', reply);
  assert.equal(json.name, `chatmesh-${SID}.json`);
  assert.equal(json.type, 'application/json');
  const back = JSON.parse(json.text);
  assert.deepEqual(back, { session_id: SID, format: 'json', exported_at: 'x', session: reply.session });
  const md = exportFile('a/b', 'markdown', { success: true, format: 'markdown', content: '# T\n\n## User\n\nhi\n' });
  assert.deepEqual(md, { name: 'chatmesh-a_b.md', type: 'text/markdown', text: '# T\n\n## User\n\nhi\n' });
});

test('Continue is offered on a cut-off answer only, and not while it runs', () => {
  const s = state();
  reconcile(s, [
    msg('q', 'user'),
    msg('a1', 'assistant', { metadata: { finish_reason: 'cancelled' } }),
    msg('a2', 'assistant', { metadata: { finish_reason: 'length' } }),
    msg('a3', 'assistant', { metadata: { finish_reason: 'failed' } }),
    msg('a4', 'assistant'),
  ], 0);
  assert.deepEqual(s.messages.map((m) => canContinue(s, m)), [false, true, true, true, false]);
  s.live.set('a1', { taskId: 't', progress: 0 });
  assert.equal(canContinue(s, s.messages[1]), false);
});

test('a continue grows the same message and is not called a regeneration', () => {
  const s = state();
  reconcile(s, [msg('q', 'user'), msg('a', 'assistant', { content: 'Half', metadata: { finish_reason: 'cancelled' } })], 0);
  // The page asked to continue (actions.js), then the task's events.
  s.live.set('a', { taskId: 't9', progress: 0, text: 'Continuing…', partial: '', hadContent: false, continuing: true });
  applyEvent(s, EV.MESSAGE_REGENERATING, { sessionId: SID, messageId: 'a', taskId: 't9' }, 5);
  assert.equal(s.live.get('a').text, 'Continuing…');
  applyEvent(s, EV.REGENERATION_PROGRESS, { sessionId: SID, messageId: 'a', taskId: 't9', progress: 50, partialContent: 'Half and more', resumed: true }, 6);
  assert.equal(s.live.get('a').partial, 'Half and more');
  applyEvent(s, EV.MESSAGE_REGENERATED, { sessionId: SID, messageId: 'a', taskId: 't9', content: 'Half and more, whole.' }, 7);
  const a = s.messages[1];
  assert.deepEqual([a.id, a.content, a.metadata.regenerated, a.metadata.finish_reason], ['a', 'Half and more, whole.', false, '']);
  assert.equal(s.live.has('a'), false);
  // A regenerate of it (no continue asked) is one.
  applyEvent(s, EV.MESSAGE_REGENERATING, { sessionId: SID, messageId: 'a', taskId: 't10' }, 8);
  assert.equal(s.live.get('a').text, 'Regenerating…');
  assert.equal(s.live.get('a').hadContent, true);
});

test('another tab\'s rename, delete and restore of the session', () => {
  const s = state();
  reconcile(s, [msg('q', 'user'), msg('a', 'assistant')], 0);
  const ev = (status) => applyEvent(s, EV.SESSION_UPDATED, { sessionId: SID, status }, 0);
  assert.deepEqual(ev('session_renamed'), [{ kind: 'resync', delay: 0 }, { kind: 'refreshSessions' }]);
  assert.deepEqual(ev('session_deleted'), [{ kind: 'sessionDeleted' }, { kind: 'renderAll' }, { kind: 'refreshSessions' }]);
  assert.equal(s.messages.length, 0);
  assert.deepEqual(ev('session_restored'), [{ kind: 'resync', delay: 0 }, { kind: 'refreshSessions' }]);
  // A message delete's undo: message_restored, the session is fetched again.
  assert.deepEqual(applyEvent(s, EV.MESSAGE_RESTORED, { sessionId: SID, messageId: 'q', restoredCount: 2, restoredMessageIds: ['q', 'a'] }, 0),
    [{ kind: 'resync', delay: 0 }, { kind: 'refreshSessions' }]);
  // Of another session: nothing.
  assert.deepEqual(applyEvent(s, EV.SESSION_UPDATED, { sessionId: 'other', status: 'session_deleted' }, 0), []);
});
