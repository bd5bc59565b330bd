// The composer's unsent text across a sign-in. When the server refuses the
// token (401: it expired), the text is kept in sessionStorage (this tab
// only; it survives a reload) and the sign-in form says so; after signing
// in it is back in the composer. An explicit sign-out discards it.
// keepDraft / takeDraft work on any Storage (tested under node:
// tests/web/test_draft.mjs); createDraft binds them to the page.

export const DRAFT_KEY = 'chatmesh.draft';

// Keeps text unless it is blank (a kept draft is not overwritten by nothing).
export function keepDraft(storage, text) {
  if (!storage || !String(text || '').trim()) return false;
  try {
    storage.setItem(DRAFT_KEY, String(text));
    return true;
  } catch {
    return false; // storage full or disabled: the text is still in the page
  }
}

// The kept draft, removed from storage, or null.
export function takeDraft(storage) {
  if (!storage) return null;
  try {
    const text = storage.getItem(DRAFT_KEY);
    storage.removeItem(DRAFT_KEY);
    return text;
  } catch {
    return null;
  }
}

export function hasDraft(storage) {
  try {
    return !!(storage && storage.getItem(DRAFT_KEY));
  } catch {
    return false;
  }
}

function sessionStore() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

// input: the composer's textarea; note: the sign-in form's line saying a
// draft waits (shown while one is kept).
export function createDraft({ input, note, storage = sessionStore() }) {
  const showNote = () => { note.hidden = !hasDraft(storage); };
  showNote();
  return {
    // The sign-in was refused: keep what the composer holds.
    keep() {
      keepDraft(storage, input.value);
      showNote();
    },
    // Signed in again: the kept text goes back into an empty composer.
    restore() {
      const text = takeDraft(storage);
      if (text && !input.value.trim()) input.value = text;
      showNote();
    },
    discard() {
      takeDraft(storage);
      input.value = '';
      showNote();
    },
  };
}
