// Export of the open session (docs/api.md, GET /api/sessions/{id}/export):
// "JSON" downloads the whole tree, every version of every turn with its
// votes and branches, as the server wrote it; "Markdown" the active path
// (the conversation as shown). The buttons are in the conversation's
// header and hidden while the session exists only on this page (or was
// deleted in another tab).
// exportFile is DOM-free (tests/web/test_chat_controls.mjs).

import { reportError } from './actions.js';
import { $, announce } from './view.js';

// The file of an export reply: {name, type, text}.
export function exportFile(sessionId, format, reply) {
  const safe = String(sessionId).replace(/[^A-Za-z0-9_-]/g, '_');
  if (format === 'markdown') {
    return { name: `chatmesh-${safe}.md`, type: 'text/markdown', text: String(reply.content || '') };
  }
  const { success, ...body } = reply; // the envelope's flag is no part of the export
  return { name: `chatmesh-${safe}.json`, type: 'application/json', text: JSON.stringify(body, null, 2) + '\n' };
}

function download({ name, type, text }) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 0);
}

export function createExport({ state, api }) {
  const group = $('#export-tools');

  async function run(format, button) {
    const id = state.sessionId;
    if (!id || state.localOnly || button.getAttribute('aria-busy') === 'true') return;
    button.setAttribute('aria-busy', 'true');
    try {
      const reply = await api.exportSession(id, format);
      download(exportFile(id, format, reply));
      announce(format === 'markdown' ? 'The conversation was downloaded as Markdown.' : 'The session was downloaded as JSON.');
    } catch (err) {
      reportError('Export failed', err);
    } finally {
      button.setAttribute('aria-busy', 'false');
    }
  }

  for (const [id, format] of [['#export-json', 'json'], ['#export-markdown', 'markdown']]) {
    const button = $(id);
    button.addEventListener('click', () => run(format, button));
  }

  // After every change of the open session (app.js).
  function sync() {
    group.hidden = !state.sessionId || state.localOnly || state.sessionDeleted;
  }

  return { sync };
}
