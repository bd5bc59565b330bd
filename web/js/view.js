// The page's DOM: notices, the sign-in and live-status views and the
// conversation (the session list is sidebar.js's), drawn from the state (model.js) it is bound
// to. What a click does is the wiring's (app.js), through the hooks:
//   action(action, messageId)   a message's toolbar button
//   buildEditor(message)        the edit form of a message being edited
//   history(messageId, tag)     the "edited" tag: show the edit history
//   rendered()                  after the conversation was drawn again
// Message text is only ever rendered through renderMarkdown (sanitised)
// or textContent.

import { copyButton } from './copy.js';
import { decorateCode, renderMarkdown } from './markdown.js';
import { icon } from './icons.js';
import { canContinue, findMessage } from './model.js';
import { updateVersionNav, versionNav } from './versions.js';
import { myVote } from './votes.js';

export const $ = (sel, root = document) => root.querySelector(sel);

let state = null;
let hooks = null;

export function bindView(boundState, boundHooks) {
  state = boundState;
  hooks = boundHooks;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

// A toast; it goes by itself after timeoutMs (0: only when closed), and
// takes one line on a phone (the full text is its title).
export function notify(text, kind = 'error', timeoutMs = kind === 'error' ? 8000 : 5000) {
  const box = $('#notices');
  const notice = el('div', { class: 'notice', 'data-kind': kind, role: kind === 'error' ? 'alert' : 'status', title: text });
  notice.append(el('span', { class: 'notice-text', text }));
  const close = el('button', { type: 'button', class: 'icon-button notice-close', 'aria-label': 'Dismiss notice' }, icon('close'));
  close.addEventListener('click', () => notice.remove());
  notice.append(close);
  box.append(notice);
  while (box.children.length > 5) box.firstElementChild.remove();
  if (timeoutMs) setTimeout(() => notice.remove(), timeoutMs);
  return notice;
}

export function showSignIn() {
  $('#app-view').hidden = true;
  $('#user-box').hidden = true;
  $('#toggle-sessions').hidden = true;
  $('#live-status').hidden = true;
  $('#signin-view').hidden = false;
  setLiveState('off');
  $('#messages').replaceChildren();
  $('#session-list').replaceChildren();
  $('#token-input').value = '';
  $('#token-input').focus();
}

export function showApp(user) {
  $('#notices').replaceChildren(); // sign-in problems are over
  $('#signin-view').hidden = true;
  $('#app-view').hidden = false;
  $('#user-box').hidden = false;
  $('#toggle-sessions').hidden = false;
  $('#live-status').hidden = false;
  $('#user-name').textContent = user;
  $('#user-name').title = `Signed in as ${user}`;
}

export function setLiveState(kind, retrySecs) {
  const node = $('#live-status');
  node.dataset.state = kind;
  node.textContent = {
    off: 'Not connected',
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    down: `Disconnected, retrying in ${retrySecs} s`,
    local: 'New session',
  }[kind] || kind;
}

export function formatTime(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function messageEl(id) {
  return document.querySelector(`#messages [data-message-id="${CSS.escape(id)}"]`);
}

function isBusy(action, id) {
  return state.busy.has(`${action}:${id}`);
}

export function renderEmptyState() {
  $('#empty-state').hidden = state.messages.length > 0;
}

export function renderMessages() {
  const list = $('#messages');
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const wanted = new Set(state.messages.map((m) => m.id));
  for (const node of [...list.children]) if (!wanted.has(node.dataset.messageId)) node.remove();
  let prev = null;
  for (const m of state.messages) {
    let node = messageEl(m.id);
    if (!node) node = buildMessage(m);
    const expected = prev ? prev.nextElementSibling : list.firstElementChild;
    if (node !== expected) list.insertBefore(node, expected);
    updateMessage(node, m);
    prev = node;
  }
  renderEmptyState();
  if (nearBottom) list.scrollTop = list.scrollHeight;
  hooks.rendered();
}

export function renderOne(id) {
  const m = findMessage(state, id);
  const node = messageEl(id);
  if (!m || !node) return;
  const list = $('#messages');
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  updateMessage(node, m);
  if (nearBottom) list.scrollTop = list.scrollHeight;
  hooks.rendered();
}

function actionButton(action, label, iconName) {
  const b = el('button', { type: 'button', class: 'action', 'data-action': action, 'aria-label': label, title: label });
  b.append(icon(iconName), el('span', { class: 'action-label', text: label }));
  return b;
}

function buildMessage(m) {
  const headingId = 'h-' + m.id;
  const node = el('article', {
    class: 'message',
    'data-message-id': m.id,
    'data-role': m.role,
    'aria-labelledby': headingId,
  });
  const meta = el('header', { class: 'message-meta' },
    el('span', { class: 'role', id: headingId, text: m.role === 'user' ? 'You' : m.role === 'assistant' ? 'Assistant' : 'System' }),
    el('time', { class: 'timestamp' }),
    el('button', {
      type: 'button', class: 'marker marker-button', 'data-marker': 'edited', text: 'edited', hidden: true,
      'aria-haspopup': 'dialog', 'aria-label': 'edited: show the edit history', title: 'Show the edit history',
    }),
    el('span', { class: 'marker', 'data-marker': 'regenerated', text: 'regenerated', hidden: true }),
    el('span', { class: 'marker stopped', 'data-marker': 'stopped', text: 'stopped', hidden: true }),
    el('span', { class: 'marker model', 'data-marker': 'model', hidden: true }),
  );
  const content = el('div', { class: 'message-content' });
  const progress = el('div', { class: 'regeneration-progress', hidden: true },
    el('div', {
      class: 'progress-bar', role: 'progressbar', 'aria-label': 'Answer progress',
      'aria-valuemin': '0', 'aria-valuemax': '100',
    }, el('div', { class: 'progress-fill' })),
    el('div', { class: 'progress-text', text: 'Working…' }),
  );
  const thoughts = el('details', { class: 'thought-process', hidden: true },
    el('summary', { text: 'Thought process' }),
    el('p', { class: 'thinking-about' }),
    el('ol', { class: 'thought-steps' }),
    el('p', { class: 'thought-conclusion' }),
  );
  const actions = el('div', { class: 'message-actions', role: 'toolbar', 'aria-label': 'Message actions' });
  actions.append(versionNav());
  if (m.role === 'assistant') {
    const up = actionButton('upvote', 'Upvote', 'upvote');
    up.append(el('span', { class: 'vote-count', 'data-kind': 'up', text: '0' }));
    const down = actionButton('downvote', 'Downvote', 'downvote');
    down.append(el('span', { class: 'vote-count', 'data-kind': 'down', text: '0' }));
    const more = actionButton('continue', 'Continue', 'continue');
    more.hidden = true;
    actions.append(more, actionButton('regenerate', 'Regenerate', 'regenerate'), up, down);
  }
  if (m.role === 'user') actions.append(actionButton('edit', 'Edit', 'edit'));
  actions.append(actionButton('copy', 'Copy', 'copy'));
  actions.append(actionButton('delete', 'Delete', 'delete'));
  actions.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (b && !b.disabled && b.getAttribute('aria-disabled') !== 'true') hooks.action(b.dataset.action, m.id);
  });
  $('[data-marker="edited"]', meta).addEventListener('click', (ev) => hooks.history(m.id, ev.currentTarget));
  node.append(meta, content, progress, thoughts, actions);
  return node;
}

function updateMessage(node, m) {
  const time = $('.timestamp', node);
  if (time.dateTime !== m.timestamp) {
    time.dateTime = m.timestamp;
    time.textContent = formatTime(m.timestamp);
    time.title = m.timestamp;
  }
  $('[data-marker="edited"]', node).hidden = !m.metadata.edited;
  $('[data-marker="regenerated"]', node).hidden = !m.metadata.regenerated;
  const live = state.live.get(m.id);
  $('[data-marker="stopped"]', node).hidden = !!live || m.metadata.finish_reason !== 'cancelled';
  const model = $('[data-marker="model"]', node);
  model.hidden = !m.metadata.model;
  model.textContent = m.metadata.model;

  node.classList.toggle('is-streaming', !!live);
  node.setAttribute('aria-busy', live ? 'true' : 'false');

  // Content (or the editor, which owns the space while open).
  const content = $('.message-content', node);
  const editing = state.editing === m.id;
  content.hidden = editing;
  let editor = $('.editor', node);
  if (editing && !editor) {
    editor = hooks.buildEditor(m);
    content.after(editor);
    $('textarea', editor).focus();
  } else if (!editing && editor) {
    editor.remove();
  }
  const shown = live && live.partial ? live.partial : m.content;
  if (content.dataset.rendered !== shown || content.dataset.empty !== String(!shown)) {
    content.innerHTML = renderMarkdown(shown); // sanitised by renderMarkdown
    decorateCode(content, copyButton);
    content.dataset.rendered = shown;
    content.dataset.empty = String(!shown);
  }

  // Progress.
  const progress = $('.regeneration-progress', node);
  progress.hidden = !live;
  if (live) {
    const bar = $('.progress-bar', progress);
    const fill = $('.progress-fill', progress);
    if (live.progress === null) {
      bar.removeAttribute('aria-valuenow');
      bar.classList.add('indeterminate');
      fill.style.width = '';
    } else {
      const pct = Math.max(0, Math.min(100, Math.round(live.progress)));
      bar.setAttribute('aria-valuenow', String(pct));
      bar.classList.remove('indeterminate');
      fill.style.width = pct + '%';
    }
    $('.progress-text', progress).textContent =
      (live.text || 'Working…') + (live.progress === null ? '' : ` (${Math.round(live.progress)}%)`);
  }

  // Thought process.
  const t = state.thoughts.get(m.id);
  const details = $('.thought-process', node);
  details.hidden = !t;
  if (t) {
    const count = t.steps.length;
    const of = !t.done && t.totalSteps > count ? ` of ${t.totalSteps}` : '';
    $('summary', details).textContent = `Thought process (${count}${of} step${count === 1 && !of ? '' : 's'}${t.done ? '' : ', thinking…'})`;
    const about = $('.thinking-about', details);
    about.textContent = t.thinkingAbout ? `Thinking about: ${t.thinkingAbout}` : '';
    about.hidden = !t.thinkingAbout;
    const steps = $('.thought-steps', details);
    if (steps.children.length !== count) {
      steps.replaceChildren(...t.steps.map((s) => el('li', {},
        el('strong', { text: `Step ${s.step}: ` }),
        document.createTextNode(s.reasoning))));
    }
    const conclusion = $('.thought-conclusion', details);
    conclusion.textContent = t.conclusion ? `Conclusion: ${t.conclusion}` : '';
    conclusion.hidden = !t.conclusion;
  }

  // Actions and votes: a running answer has nothing to vote on or delete yet.
  updateVersionNav($('.version-nav', node), m, isBusy('version', m.id) || !!live);
  const vote = myVote(m);
  for (const b of node.querySelectorAll('.message-actions > button[data-action]')) {
    const a = b.dataset.action;
    const isVote = a === 'upvote' || a === 'downvote';
    const key = isVote ? 'vote' : a;
    let disabled = isBusy(key, m.id) || isBusy('delete', m.id);
    if (a === 'regenerate' || a === 'delete' || isVote) disabled = disabled || !!live;
    if (a === 'edit') disabled = disabled || editing;
    // Offered only while the answer is cut off (stopped, length, failed).
    if (a === 'continue') b.hidden = !canContinue(state, m);
    b.disabled = disabled;
    b.setAttribute('aria-busy', isBusy(key, m.id) ? 'true' : 'false');
    if (isVote) b.setAttribute('aria-pressed', String(vote === a));
  }
  const up = $('.vote-count[data-kind="up"]', node);
  const down = $('.vote-count[data-kind="down"]', node);
  if (up) {
    up.textContent = String(m.metadata.upvotes);
    up.closest('button').setAttribute('aria-label', `Upvote (${m.metadata.upvotes})${vote === 'upvote' ? ', yours: click to remove' : ''}`);
  }
  if (down) {
    down.textContent = String(m.metadata.downvotes);
    down.closest('button').setAttribute('aria-label', `Downvote (${m.metadata.downvotes})${vote === 'downvote' ? ', yours: click to remove' : ''}`);
  }
}

export function announce(text) {
  const node = $('#announcer');
  node.textContent = '';
  // A fresh text node so screen readers announce repeats too.
  requestAnimationFrame(() => { node.textContent = text; });
}
