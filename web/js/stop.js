// Stop: while an answer of the open session is being generated, the
// composer's Send button is a Stop button (Esc in the message box or the
// conversation too; app.js binds the keys),
// cancelling that answer's task (POST /api/messages/tasks/{id}/cancel).
// The answer keeps what streamed so far, marked "stopped": the store keeps
// it (model.js, regeneration_error "cancelled" with the kept content). sync() follows the state after every
// render (view.js's rendered hook).

import { runningAnswer } from './model.js';
import { icon } from './icons.js';
import { $, notify } from './view.js';

export function createStop({ state, api }) {
  let mode = null;
  let stopping = null; // the task a cancel is on its way for

  function sync() {
    const running = runningAnswer(state);
    const want = running ? 'stop' : 'send';
    if (!running) stopping = null;
    const button = $('#send');
    button.setAttribute('aria-busy', running && stopping && stopping === running.taskId ? 'true' : 'false');
    if (want === mode) return;
    mode = want;
    button.dataset.mode = want;
    button.classList.toggle('danger', want === 'stop');
    button.classList.toggle('primary', want !== 'stop');
    button.setAttribute('aria-label', want === 'stop' ? 'Stop the answer' : 'Send');
    button.title = want === 'stop' ? 'Stop the answer (Esc)' : 'Send (Enter)';
    button.replaceChildren(icon(want === 'stop' ? 'stop' : 'send'), document.createTextNode(want === 'stop' ? 'Stop' : 'Send'));
  }

  function isRunning() {
    return runningAnswer(state) !== null;
  }

  async function stop() {
    const running = runningAnswer(state);
    if (!running) return;
    if (!running.taskId) {
      notify('The answer has not started yet; try Stop again in a moment.', 'info');
      return;
    }
    if (stopping === running.taskId) return;
    stopping = running.taskId;
    sync();
    try {
      await api.cancel(running.taskId);
    } catch (err) {
      stopping = null;
      // 409: it ended on its own meanwhile; its last event is on the way.
      if (err.status !== 409) notify(`Stopping failed: ${err.message}`, 'error');
    }
    sync();
  }

  return { sync, stop, isRunning };
}
