// The frontend's pure model (web/js/model.js) under node: every event of
// web/js/events.js (made from proto/cm_event.h) has a handler, and the story
// of tests/fixtures/events.json (checked against the table by test_gw_events)
// plays through it as the page shows it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { EV, EVENT_TABLE } from '../../web/js/events.js';
import { HANDLERS, applyEvent, reconcile } from '../../web/js/model.js';
import { EVENT_TYPES } from '../../web/js/stream.js';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/events.json', import.meta.url), 'utf8'));

function freshState() {
  return {
    sessionId: fixture.sessionId, messages: [], live: new Map(), thoughts: new Map(),
    taskToMessage: new Map(), editing: null,
  };
}

const kinds = (effects) => effects.map((e) => e.kind);

test('every event a stream carries has a handler, and every handler an event', () => {
  assert.ok(EVENT_TABLE.length >= 12);
  for (const e of EVENT_TABLE) {
    assert.equal(EV[e.key], e.name);
    assert.equal(typeof HANDLERS[e.name], 'function', `no handler for ${e.name}`);
    assert.ok(EVENT_TYPES.includes(e.name), `the stream does not listen for ${e.name}`);
  }
  const names = new Set(EVENT_TABLE.map((e) => e.name));
  for (const type of Object.keys(HANDLERS)) {
    assert.ok(names.has(type) || type === 'error', `handler for unknown event ${type}`);
  }
  assert.equal(Object.keys(EV).length, EVENT_TABLE.length);
});

test('the fixture story plays through the model', () => {
  const state = freshState();
  reconcile(state, fixture.messages, 1000);
  const answer = 'msg_a1_sess_fx_assistant';
  const user = 'msg_u1_sess_fx_user';
  // A page loaded mid-generation: the stored steps so far, in the one shape.
  assert.deepEqual(state.thoughts.get(answer).steps, [{ step: 1, reasoning: 'Reading the question.' }]);
  assert.equal(state.thoughts.get(answer).done, false);
  assert.ok(state.live.has(answer));

  const effects = fixture.events.map(({ event, data }) => {
    const out = applyEvent(state, event, data, 2000);
    const m = state.messages.find((x) => x.id === answer);
    const t = state.thoughts.get(answer);
    switch (event) {
      case EV.THOUGHT_PROCESS_START:
        assert.equal(t.thinkingAbout, 'Why is the sky blue?');
        assert.equal(t.totalSteps, 3);
        assert.deepEqual(t.steps, []);
        break;
      case EV.THOUGHT_PROCESS_STEP:
        assert.deepEqual(t.steps, data.steps); // the event's steps are the model's
        break;
      case EV.THOUGHT_PROCESS_COMPLETE:
        assert.equal(t.conclusion, 'Rayleigh scattering.');
        assert.equal(t.done, true);
        break;
      case EV.REGENERATION_PROGRESS:
        assert.equal(state.live.get(answer).progress, 50);
        assert.equal(state.live.get(answer).partial, 'Rayleigh');
        break;
      case EV.MESSAGE_REGENERATED:
        assert.equal(m.content, 'Rayleigh scattering.');
        assert.equal(m.metadata.regenerating, false);
        assert.equal(state.live.has(answer), false);
        break;
      case EV.FEEDBACK_SUBMITTED:
        assert.equal(m.metadata.upvotes, 1);
        break;
      case EV.FEEDBACK_WITHDRAWN:
        assert.equal(m.metadata.upvotes, 0);
        assert.equal(m.metadata.downvotes, 0);
        break;
      case EV.VERSION_ACTIVATED:
        assert.equal(m.content, 'Blue light scatters most.');
        assert.equal(m.version_index, 1);
        assert.equal(m.version_count, 2);
        break;
      case EV.MESSAGE_EDITED:
        assert.equal(state.messages[0].content, 'Why is the sky blue at noon?');
        assert.equal(state.messages[0].metadata.edited, true);
        break;
      case EV.REGENERATION_ERROR:
        assert.equal(m.metadata.regenerating, false);
        break;
      case EV.MESSAGE_DELETED:
        assert.deepEqual(state.messages, []);
        assert.equal(state.thoughts.size, 0);
        break;
      default:
    }
    return { event, kinds: kinds(out), out };
  });
  // The view's part: what each event asks of it.
  const of = (name) => effects.filter((e) => e.event === name);
  assert.deepEqual(of(EV.CONNECTION_STATUS)[0].out, [{ kind: 'resync', delay: 0 }]);
  assert.deepEqual(of(EV.SESSION_UPDATED).map((e) => e.kinds), [['resync', 'refreshSessions'], ['resync', 'refreshSessions']]);
  assert.deepEqual(of(EV.MESSAGE_REGENERATED)[0].kinds, ['render', 'announce', 'resync', 'refreshSessions']);
  assert.deepEqual(of(EV.REGENERATION_ERROR)[0].out[1], { kind: 'notify', text: 'The regeneration was stopped.', level: 'info' });
  assert.deepEqual(of(EV.MESSAGE_DELETED)[0].kinds, ['renderAll', 'refreshSessions']);
  // An edited question has a new branch below it: the session reloads.
  assert.deepEqual(of(EV.MESSAGE_EDITED)[0].out, [{ kind: 'render', id: user }, { kind: 'resync', delay: 0 }]);
  assert.deepEqual(of(EV.VERSION_ACTIVATED)[0].out, [{ kind: 'render', id: answer }, { kind: 'resync', delay: 0 }]);
});

test('events the page cannot place change nothing or ask for a resync', () => {
  const state = freshState();
  reconcile(state, fixture.messages, 1000);
  const before = JSON.stringify(state.messages);
  const edited = fixture.events.find((e) => e.event === EV.MESSAGE_EDITED);
  // Another session's event.
  assert.deepEqual(applyEvent(state, EV.MESSAGE_EDITED, { ...edited.data, sessionId: 'other' }, 0), []);
  // An event name no table knows.
  assert.deepEqual(applyEvent(state, 'message_exploded', edited.data, 0), []);
  // About a message the page does not have yet: fetch the session again.
  assert.deepEqual(applyEvent(state, EV.MESSAGE_EDITED, { ...edited.data, messageId: 'msg_x_sess_fx_user' }, 0),
    [{ kind: 'resync' }]);
  assert.equal(JSON.stringify(state.messages), before);
});
