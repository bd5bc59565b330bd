// web/js/draft.js under node: the composer's text kept across a sign-in.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DRAFT_KEY, hasDraft, keepDraft, takeDraft } from '../../web/js/draft.js';

function memoryStorage() {
  const items = new Map();
  return {
    getItem: (k) => (items.has(k) ? items.get(k) : null),
    setItem: (k, v) => { items.set(k, String(v)); },
    removeItem: (k) => { items.delete(k); },
  };
}

test('a draft is kept, taken back once, and gone after', () => {
  const s = memoryStorage();
  assert.equal(takeDraft(s), null);
  assert.equal(keepDraft(s, '  two\nlines  '), true);
  assert.equal(s.getItem(DRAFT_KEY), '  two\nlines  '); // as typed
  assert.equal(hasDraft(s), true);
  assert.equal(takeDraft(s), '  two\nlines  ');
  assert.equal(hasDraft(s), false);
  assert.equal(takeDraft(s), null);
});

test('blank text never replaces a kept draft', () => {
  const s = memoryStorage();
  keepDraft(s, 'first');
  assert.equal(keepDraft(s, ' \n '), false);
  assert.equal(keepDraft(s, ''), false);
  assert.equal(takeDraft(s), 'first');
});

test('storage that throws or is missing loses nothing else', () => {
  const broken = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('full'); }, removeItem() { throw new Error('denied'); } };
  assert.equal(keepDraft(broken, 'x'), false);
  assert.equal(takeDraft(broken), null);
  assert.equal(hasDraft(broken), false);
  assert.equal(keepDraft(null, 'x'), false);
  assert.equal(takeDraft(null), null);
});
