// Idempotency keys for the gateway's mutations (docs/api.md, "Idempotency
// keys"): one key per user action, sent as the Idempotency-Key header.
//
// A user action is a mutation (method, path, body). The same action asked
// again within windowMs (a double click, a second tap while the first is
// on its way, a retry after a dropped connection) gets the same key, so
// the server does it once and answers both the same; after the window, or
// for any other action, a fresh key. An action undone (a delete, then its
// restore) is forgotten: doing it again is a new action with a new key,
// not a replay of the first. Pure apart from the clock and the key source,
// both injectable for tests.

export const IDEM_WINDOW_MS = 5000;

function randomKey() {
  if (globalThis.crypto && typeof globalThis.crypto.randomUUID === 'function') {
    return globalThis.crypto.randomUUID();
  }
  const hex = () => Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return `${hex()}-${hex()}-${hex()}-${hex()}`;
}

export function createIdemKeys({ now = () => Date.now(), newKey = randomKey, windowMs = IDEM_WINDOW_MS } = {}) {
  const recent = new Map(); // action -> {key, at, method, path}
  return {
    // The key for this action: the recent one, or a new one.
    keyFor(method, path, body) {
      const at = now();
      for (const [action, entry] of recent) {
        if (at - entry.at >= windowMs) recent.delete(action);
      }
      const action = `${method} ${path} ${body === undefined ? '' : JSON.stringify(body)}`;
      const seen = recent.get(action);
      if (seen) return seen.key;
      const key = newKey();
      recent.set(action, { key, at, method, path: path.split('?')[0] });
      return key;
    },
    // Forgets the recent actions of this method on this path (its query and
    // body aside): the next one gets a fresh key.
    forget(method, path) {
      const bare = path.split('?')[0];
      for (const [action, entry] of recent) {
        if (entry.method === method && entry.path === bare) recent.delete(action);
      }
    },
  };
}
