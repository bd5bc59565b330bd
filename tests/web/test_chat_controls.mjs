// The chat controls' DOM-free logic under node: the version arrows
// (web/js/versions.js), the vote toggle (web/js/votes.js), Stop and the
// "stopped" answer (web/js/model.js), the 429 sentence (web/js/limits.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EV } from '../../web/js/events.js';
import { applyEvent, normalizeMessage, reconcile, runningAnswer } from '../../web/js/model.js';
import { limitOf, limitSentence } from '../../web/js/limits.js';
import { versionTarget } from '../../web/js/versions.js';
import { myVote, voteAction } from '../../web/js/votes.js';

const SID = 's_ctl';
const state = () => ({
  sessionId: SID, messages: [], live: new Map(), thoughts: new Map(),
  taskToMessage: new Map(), editing: null,
});
const answer = (over = {}) => ({
  id: 'msg_a', role: 'assistant', content: 'Old answer.', timestamp: '', ...over,
  metadata: { edited: false, regenerating: false, regenerated: false, upvotes: 0, downvotes: 0, ...(over.metadata || {}) },
});

test('a message carries the version it shows; one version without the fields', () => {
  const one = normalizeMessage(answer());
  assert.deepEqual([one.version_index, one.version_count, one.version_id, one.version_ids], [1, 1, 'msg_a', ['msg_a']]);
  const three = normalizeMessage(answer({ version_index: 2, version_count: 3, version_id: 'ver_2', version_ids: ['msg_a', 'ver_2', 'ver_3'] }));
  assert.deepEqual([three.version_index, three.version_count, three.version_id], [2, 3, 'ver_2']);
});

test('the arrows step one version and stop at either end', () => {
  const m = normalizeMessage(answer({ version_index: 2, version_count: 3 }));
  assert.equal(versionTarget(m, -1), 1);
  assert.equal(versionTarget(m, 1), 3);
  assert.equal(versionTarget({ ...m, version_index: 1 }, -1), null);
  assert.equal(versionTarget({ ...m, version_index: 3 }, 1), null);
  assert.equal(versionTarget(normalizeMessage(answer()), 1), null);
});

test('a finished regeneration is the newest version at once', () => {
  const s = state();
  reconcile(s, [answer({ version_index: 2, version_count: 2 })], 0);
  applyEvent(s, EV.MESSAGE_REGENERATED,
    { sessionId: SID, messageId: 'msg_a', taskId: 't', content: 'Third.', versionIndex: 3, versionCount: 3, versionId: 'ver_3' }, 0);
  assert.deepEqual([s.messages[0].version_index, s.messages[0].version_count, s.messages[0].version_id], [3, 3, 'ver_3']);
});

test('version_activated from another tab switches the turn', () => {
  const s = state();
  reconcile(s, [answer({ version_index: 3, version_count: 3 })], 0);
  const out = applyEvent(s, EV.VERSION_ACTIVATED,
    { sessionId: SID, messageId: 'msg_a', content: 'First.', versionIndex: 1, versionCount: 3, versionId: 'msg_a' }, 0);
  assert.deepEqual(out, [{ kind: 'render', id: 'msg_a' }, { kind: 'resync', delay: 0 }]);
  assert.deepEqual([s.messages[0].content, s.messages[0].version_index], ['First.', 1]);
});

test('the pressed vote is the counts of the shown version; clicking it withdraws', () => {
  const none = normalizeMessage(answer());
  assert.equal(myVote(none), null);
  assert.equal(voteAction(none, 'upvote'), 'submit');
  const up = normalizeMessage(answer({ metadata: { upvotes: 1 } }));
  assert.equal(myVote(up), 'upvote');
  assert.equal(voteAction(up, 'upvote'), 'withdraw');
  assert.equal(voteAction(up, 'downvote'), 'submit');
  const s = state();
  reconcile(s, [answer({ metadata: { upvotes: 1 } })], 0);
  applyEvent(s, EV.FEEDBACK_WITHDRAWN, { sessionId: SID, messageId: 'msg_a', feedbackType: 'upvote', upvotes: 0, downvotes: 0 }, 0);
  assert.equal(myVote(s.messages[0]), null);
  applyEvent(s, EV.FEEDBACK_SUBMITTED, { sessionId: SID, messageId: 'msg_a', feedbackId: 'f', feedbackType: 'downvote', upvotes: 0, downvotes: 1 }, 0);
  assert.equal(myVote(s.messages[0]), 'downvote');
  // A vote on another version (another tab shows it) leaves these counts.
  assert.deepEqual(applyEvent(s, EV.FEEDBACK_SUBMITTED,
    { sessionId: SID, messageId: 'msg_a', feedbackId: 'g', feedbackType: 'upvote', upvotes: 1, downvotes: 0, versionIndex: 2 }, 0), []);
  assert.equal(myVote(s.messages[0]), 'downvote');
});

test('Stop targets the streaming answer; its task id comes with the events', () => {
  const s = state();
  reconcile(s, [answer({ id: 'msg_q', role: 'user', content: 'Q' }), answer({ content: '', metadata: { regenerating: true } })], 0);
  assert.deepEqual(runningAnswer(s), { messageId: 'msg_a', taskId: null });
  applyEvent(s, EV.REGENERATION_PROGRESS, { sessionId: SID, messageId: 'msg_a', taskId: 't1', progress: 40, partialContent: 'Half an' }, 0);
  assert.deepEqual(runningAnswer(s), { messageId: 'msg_a', taskId: 't1' });
  const out = applyEvent(s, EV.REGENERATION_ERROR, {
    sessionId: SID, messageId: 'msg_a', taskId: 't1', error: 'cancelled',
    content: 'Half an', versionIndex: 1, versionCount: 1, versionId: 'msg_a', finishReason: 'cancelled',
  }, 0);
  // A first answer's stop is not called a regeneration; the text the store
  // kept is the message's, marked cancelled (a reload gets the same).
  assert.deepEqual(out[1], { kind: 'notify', text: 'The answer was stopped.', level: 'info' });
  assert.equal(s.messages[1].content, 'Half an');
  assert.equal(s.messages[1].metadata.finish_reason, 'cancelled');
  assert.equal(runningAnswer(s), null);
  assert.equal(normalizeMessage(answer({ content: 'Half an', metadata: { finish_reason: 'cancelled' } })).metadata.finish_reason, 'cancelled');
  // A continue that completes clears the mark; a failure that kept nothing
  // leaves the text as it was.
  applyEvent(s, EV.MESSAGE_REGENERATING, { sessionId: SID, messageId: 'msg_a', taskId: 't2' }, 0);
  applyEvent(s, EV.MESSAGE_REGENERATED, { sessionId: SID, messageId: 'msg_a', taskId: 't2', content: 'Half an answer.' }, 0);
  assert.equal(s.messages[1].metadata.finish_reason, '');
  applyEvent(s, EV.MESSAGE_REGENERATING, { sessionId: SID, messageId: 'msg_a', taskId: 't3' }, 0);
  applyEvent(s, EV.REGENERATION_PROGRESS, { sessionId: SID, messageId: 'msg_a', taskId: 't3', progress: 10, partialContent: 'x' }, 0);
  applyEvent(s, EV.REGENERATION_ERROR, { sessionId: SID, messageId: 'msg_a', taskId: 't3', error: 'model down' }, 0);
  assert.equal(s.messages[1].content, 'Half an answer.');
  assert.equal(s.messages[1].metadata.finish_reason, '');
});

test('a 429 names the budget the request spends from and the wait, without jargon', () => {
  assert.equal(limitOf('POST', '/api/run_sse/s_1', { query: 'q' }), 'answers');
  assert.equal(limitOf('POST', '/api/messages/m/regenerate', {}), 'answers');
  assert.equal(limitOf('POST', '/api/messages/m/continue', undefined), 'answers');
  assert.equal(limitOf('POST', '/api/messages/m/restore', undefined), 'actions');
  assert.equal(limitOf('PUT', '/api/messages/m', { content: 'x', trigger_regeneration: true }), 'answers');
  assert.equal(limitOf('PUT', '/api/messages/m', { content: 'x', trigger_regeneration: false }), 'actions');
  assert.equal(limitOf('POST', '/api/messages/m/feedback', { feedback_type: 'upvote' }), 'actions');
  assert.equal(limitOf('DELETE', '/api/messages/m', undefined), 'actions');
  const s = limitSentence('actions', 17);
  assert.match(s, /actions .*per minute\. You can try again in 17 s\.$/);
  assert.doesNotMatch(s, /Retry-After/);
  assert.match(limitSentence('answers', 3), /new answers/);
  assert.match(limitSentence('answers', 0), /try again now/);
});
