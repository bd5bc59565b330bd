// Rate limits as a person reads them (docs/api.md, Rate limits): which
// budget a refused request spent from, and a sentence with the wait. The
// 429 body does not say which budget ran out; a request that starts an
// answer (run_sse, regenerate, continue, an edit that regenerates) spends from both,
// any other only from the actions. limitOf and limitSentence are DOM-free
// (tests/web/test_chat_controls.mjs); countdownNotice keeps the wait live.

// 'answers' (the request starts a generation) or 'actions'.
export function limitOf(method, path, body) {
  if (method === 'POST' && /^\/api\/run_sse\//.test(path)) return 'answers';
  if (method === 'POST' && /\/(regenerate|continue)$/.test(path)) return 'answers';
  if (method === 'PUT' && body && body.trigger_regeneration !== false) return 'answers';
  return 'actions';
}

export function limitSentence(limit, secs) {
  const what = limit === 'answers'
    ? 'You have asked for the most new answers (or actions) allowed per minute.'
    : 'You have made the most actions (messages, votes, edits, deletes) allowed per minute.';
  if (secs === null || secs === undefined) return `${what} Please wait a little.`;
  return secs > 0 ? `${what} You can try again in ${secs} s.` : `${what} You can try again now.`;
}

// Turns a notice about a 429 into a countdown that ends the notice when
// the wait is over. text(secs) gives the notice's whole text.
export function countdownNotice(notice, secs, text) {
  const node = notice.querySelector('.notice-text');
  const end = Date.now() + secs * 1000;
  const tick = () => {
    if (!notice.isConnected) return;
    const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    node.textContent = text(left);
    notice.title = node.textContent;
    if (left === 0) {
      setTimeout(() => notice.remove(), 2000);
      return;
    }
    setTimeout(tick, Math.min(1000, end - Date.now() - (left - 1) * 1000));
  };
  tick();
}
