// Markdown for chat messages, with Debian's libraries: marked (GitHub
// flavoured markdown: tables, fenced code), DOMPurify (sanitising) and
// highlight.js (code colours). The gateway serves them at /lib/NAME
// (CHATMESH_WEB_LIBS, gateway/gw_static.h); index.html loads marked and
// DOMPurify before the modules (globals marked, DOMPurify); highlight.js
// (0.8 MB) is loaded the first time a code block needs it (global hljs).
//
// Safety, in depth: HTML written in a message is never markup, marked's
// html renderer turns it back into escaped text (the XSS cases of
// tests/browser/test_ui.py show it as typed); links are kept only for
// http(s) URLs; and the whole result then goes through DOMPurify with a
// fixed set of tags and attributes. Without the libraries (a gateway whose
// CHATMESH_WEB_LIBS files are missing) a message is shown as plain text.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const TAGS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'br', 'strong', 'em', 'del', 'code', 'pre', 'ul', 'ol', 'li',
  'a', 'blockquote', 'hr', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'span', 'input'];
const ATTRS = ['href', 'target', 'rel', 'class', 'start', 'align', 'type', 'checked', 'disabled'];
const SAFE_URL = /^https?:\/\//i;

let ready = null; // {marked, purify} once set up; false without the libraries

function setUp() {
  if (ready !== null) return ready;
  const { marked, DOMPurify } = globalThis;
  if (!marked || typeof marked.parse !== 'function' || !DOMPurify || typeof DOMPurify.sanitize !== 'function') {
    ready = false;
    return ready;
  }
  const renderer = new marked.Renderer();
  const link = renderer.link.bind(renderer);
  // Written HTML is text; a link to anything but http(s) stays as written.
  renderer.html = (html) => escapeHtml(html.replace(/\n+$/, '')).replace(/\n/g, '<br>');
  renderer.link = (href, title, text) => (SAFE_URL.test(href || '') ? link(href, title, text) : `[${text}](${escapeHtml(href || '')})`);
  renderer.image = (href, title, text) => `![${escapeHtml(text || '')}](${escapeHtml(href || '')})`;
  marked.setOptions({ renderer, gfm: true, breaks: true, headerIds: false, mangle: false });
  const purify = DOMPurify;
  purify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName === 'A') {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
    if (node.tagName === 'INPUT') node.setAttribute('disabled', ''); // task list boxes
  });
  ready = { marked, purify };
  return ready;
}

function sanitize(purify, html) {
  return purify.sanitize(html, {
    ALLOWED_TAGS: TAGS, ALLOWED_ATTR: ATTRS, ALLOWED_URI_REGEXP: SAFE_URL, ALLOW_DATA_ATTR: false,
  });
}

// HTML for a message (a string safe to assign to innerHTML).
export function renderMarkdown(text) {
  const src = String(text ?? '').replace(/\u0000/g, '');
  const libs = setUp();
  if (!libs) return src ? '<p>' + escapeHtml(src).replace(/\n/g, '<br>') + '</p>' : '';
  return sanitize(libs.purify, libs.marked.parse(src));
}

// The text a title or the session list shows: markdown's formatting
// dropped ("What is **chatmesh**?" reads "What is chatmesh?"), never markup.
export function plainText(text) {
  const src = String(text ?? '').replace(/\u0000/g, '');
  const libs = setUp();
  if (!libs) return src;
  const t = document.createElement('template');
  t.innerHTML = sanitize(libs.purify, libs.marked.parseInline(src));
  return t.content.textContent.replace(/\s+/g, ' ').trim();
}

// highlight.js, loaded once on first use; code blocks that came before it
// are coloured when it is there. Resolves to hljs, or null without it.
let highlighter = null;
function loadHighlighter() {
  if (!highlighter) {
    highlighter = new Promise((resolve) => {
      if (globalThis.hljs) { resolve(globalThis.hljs); return; }
      const script = document.createElement('script');
      script.src = 'lib/highlight.js';
      script.addEventListener('load', () => resolve(globalThis.hljs || null));
      script.addEventListener('error', () => resolve(null));
      document.head.append(script);
    });
  }
  return highlighter;
}

function highlight(code, lang) {
  loadHighlighter().then((hljs) => {
    // highlight.js 9 (Debian 12) has highlightBlock, later ones highlightElement.
    const run = hljs && (hljs.highlightElement || hljs.highlightBlock);
    if (run && code.isConnected && hljs.getLanguage(lang)) run.call(hljs, code);
  });
}

// Gives the code blocks of a rendered message their language label, a copy
// button and (highlight.js) colours.
export function decorateCode(root, makeCopyButton) {
  for (const pre of root.querySelectorAll('pre')) {
    if (pre.parentElement && pre.parentElement.classList.contains('code-block')) continue;
    const code = pre.querySelector('code');
    if (!code) continue;
    const lang = (/(?:^|\s)language-([\w+#.-]+)/.exec(code.className) || [])[1] || '';
    if (lang) highlight(code, lang);
    const wrap = document.createElement('div');
    wrap.className = 'code-block';
    const bar = document.createElement('div');
    bar.className = 'code-bar';
    const label = document.createElement('span');
    label.className = 'code-lang';
    label.textContent = lang || 'text';
    bar.append(label, makeCopyButton(() => code.textContent, 'Copy code'));
    pre.replaceWith(wrap);
    wrap.append(bar, pre);
  }
}
