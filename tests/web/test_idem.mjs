// web/js/idem.js under node: one key per user action, the same for a
// repeat within the window, a new one after it or for another action.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createIdemKeys, IDEM_WINDOW_MS } from '../../web/js/idem.js';

function keys() {
  let clock = 1000, n = 0;
  const idem = createIdemKeys({ now: () => clock, newKey: () => `k${++n}` });
  return { idem, advance: (ms) => { clock += ms; } };
}

test('a double click gets the key of the first click', () => {
  const { idem, advance } = keys();
  const first = idem.keyFor('POST', '/api/messages/m1/regenerate', {});
  advance(150);
  assert.equal(idem.keyFor('POST', '/api/messages/m1/regenerate', {}), first);
});

test('another action, body or method gets its own key', () => {
  const { idem } = keys();
  const vote = idem.keyFor('POST', '/api/messages/m1/feedback', { feedback_type: 'upvote' });
  assert.notEqual(idem.keyFor('POST', '/api/messages/m1/feedback', { feedback_type: 'downvote' }), vote);
  assert.notEqual(idem.keyFor('POST', '/api/messages/m2/feedback', { feedback_type: 'upvote' }), vote);
  assert.notEqual(idem.keyFor('DELETE', '/api/messages/m1'), idem.keyFor('PUT', '/api/messages/m1', {}));
});

test('after the window the same action is a new one', () => {
  const { idem, advance } = keys();
  const first = idem.keyFor('POST', '/api/run_sse/s', { query: 'hi' });
  advance(IDEM_WINDOW_MS - 1);
  assert.equal(idem.keyFor('POST', '/api/run_sse/s', { query: 'hi' }), first);
  advance(1);
  assert.notEqual(idem.keyFor('POST', '/api/run_sse/s', { query: 'hi' }), first);
});

test('the default keys are distinct and fit the header (1-255 visible ASCII)', () => {
  const idem = createIdemKeys();
  const a = idem.keyFor('POST', '/a', {}), b = idem.keyFor('POST', '/b', {});
  assert.notEqual(a, b);
  assert.match(a, /^[!-~]{1,255}$/);
});

test('a forgotten action gets a fresh key; others keep theirs', () => {
  const { idem } = keys();
  const del = idem.keyFor('DELETE', '/api/messages/m1?scope=message');
  const other = idem.keyFor('DELETE', '/api/messages/m2?scope=message');
  const restore = idem.keyFor('POST', '/api/messages/m1/restore');
  idem.forget('DELETE', '/api/messages/m1');
  const again = idem.keyFor('DELETE', '/api/messages/m1?scope=message');
  assert.notEqual(again, del);
  assert.notEqual(again, restore);
  assert.equal(idem.keyFor('DELETE', '/api/messages/m2?scope=message'), other);
  assert.equal(idem.keyFor('POST', '/api/messages/m1/restore'), restore);
});
