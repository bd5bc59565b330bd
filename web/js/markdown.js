// Safe markdown for chat messages.
//
// Order matters for safety: the whole text is HTML-escaped FIRST, and only
// then are markdown constructs turned into a small fixed set of tags. No
// character of the message ever reaches the page as markup, so a message
// containing <script> or an onerror= attribute is shown as text. Links are
// emitted only for http(s) URLs. The result is a string of HTML built from
// escaped text, safe to assign to innerHTML.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Placeholders keep already-rendered pieces (code spans, links) away from the
// later emphasis rules. NUL cannot come from the message: it is stripped first.
const PH = '\u0000';

function renderInline(escaped) {
  const saved = [];
  const keep = (html) => {
    saved.push(html);
    return PH + (saved.length - 1) + PH;
  };

  let s = escaped;
  // Inline code: contents stay literal.
  s = s.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, _ticks, code) => keep('<code>' + code.trim() + '</code>'));
  // [text](url): only http and https. The URL is already escaped, so it cannot
  // close the attribute; the pattern also refuses spaces and raw quotes.
  s = s.replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s()<>]+)\)/g, (_, label, url) =>
    keep('<a href="' + url + '" target="_blank" rel="noopener noreferrer">' + label + '</a>'));
  // Bare URLs become links too (chat answers often carry them).
  s = s.replace(/(^|[\s(])(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"&])/g, (_, pre, url) =>
    pre + keep('<a href="' + url + '" target="_blank" rel="noopener noreferrer">' + url + '</a>'));
  // Bold before italics so ** is not read as two *.
  s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>');
  s = s.replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, '$1<strong>$2</strong>');
  s = s.replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, '$1<em>$2</em>');
  // Underscore italics only at word edges, so snake_case_names stay intact.
  s = s.replace(/(^|[^\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?!\w)/g, '$1<em>$2</em>');
  s = s.replace(/~~(?=\S)([\s\S]*?\S)~~/g, '<del>$1</del>');

  return s.replace(new RegExp(PH + '(\\d+)' + PH, 'g'), (_, i) => saved[Number(i)]);
}

const FENCE = /^ {0,3}(```+|~~~+)\s*([\w+#.-]*)\s*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const HR = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const UL = /^(\s*)[-*+]\s+(.*)$/;
const OL = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^ {0,3}&gt;\s?(.*)$/;

// Lists: items are collected with their indentation; deeper items nest
// inside the previous item.
function renderList(items) {
  let html = '';
  const stack = []; // {indent, tag}
  for (const item of items) {
    while (stack.length && item.indent < stack[stack.length - 1].indent) {
      html += '</li></' + stack.pop().tag + '>';
    }
    const top = stack[stack.length - 1];
    if (!top || item.indent > top.indent) {
      const start = item.tag === 'ol' && item.start !== 1 ? ' start="' + item.start + '"' : '';
      html += '<' + item.tag + start + '><li>';
      stack.push({ indent: item.indent, tag: item.tag });
    } else if (top.tag !== item.tag) {
      html += '</li></' + stack.pop().tag + '><' + item.tag + '><li>';
      stack.push({ indent: item.indent, tag: item.tag });
    } else {
      html += '</li><li>';
    }
    html += renderInline(item.text);
  }
  while (stack.length) html += '</li></' + stack.pop().tag + '>';
  return html;
}

export function renderMarkdown(text) {
  const src = escapeHtml(String(text ?? '').replace(/\u0000/g, '').replace(/\r\n?/g, '\n'));
  const lines = src.split('\n');
  const out = [];
  let para = [];
  let list = [];
  let quote = [];

  const flushPara = () => {
    if (para.length) out.push('<p>' + para.map(renderInline).join('<br>') + '</p>');
    para = [];
  };
  const flushList = () => {
    if (list.length) out.push(renderList(list));
    list = [];
  };
  const flushQuote = () => {
    if (quote.length) out.push('<blockquote>' + renderMarkdownEscaped(quote) + '</blockquote>');
    quote = [];
  };
  const flushAll = () => { flushPara(); flushList(); flushQuote(); };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if ((m = line.match(FENCE))) {
      flushAll();
      const fence = m[1];
      const lang = m[2].replace(/[^\w+#.-]/g, '');
      const body = [];
      i++;
      while (i < lines.length && !(lines[i].trim().startsWith(fence[0].repeat(fence.length)) && lines[i].trim().replace(/[`~]/g, '') === '')) {
        body.push(lines[i]);
        i++;
      }
      const cls = lang ? ' class="language-' + lang + '"' : '';
      out.push('<pre><code' + cls + '>' + body.join('\n') + '</code></pre>');
      continue;
    }
    if (line.trim() === '') { flushAll(); continue; }
    if ((m = line.match(QUOTE))) { flushPara(); flushList(); quote.push(m[1]); continue; }
    flushQuote();
    if ((m = line.match(HEADING))) {
      flushPara(); flushList();
      const level = m[1].length;
      out.push('<h' + level + '>' + renderInline(m[2]) + '</h' + level + '>');
      continue;
    }
    if (HR.test(line) && para.length === 0) { flushList(); out.push('<hr>'); continue; }
    if ((m = line.match(UL))) {
      flushPara();
      list.push({ indent: m[1].replace(/\t/g, '    ').length, tag: 'ul', text: m[2] });
      continue;
    }
    if ((m = line.match(OL))) {
      flushPara();
      list.push({ indent: m[1].replace(/\t/g, '    ').length, tag: 'ol', start: Number(m[2]), text: m[3] });
      continue;
    }
    if (list.length && /^\s+\S/.test(line)) {
      // A continuation line of the last list item.
      list[list.length - 1].text += ' ' + line.trim();
      continue;
    }
    flushList();
    para.push(line);
  }
  flushAll();
  return out.join('\n');
}

// Blockquote bodies are already escaped: render them without escaping twice.
function renderMarkdownEscaped(lines) {
  return lines.map((l) => (l.trim() === '' ? '' : '<p>' + renderInline(l) + '</p>')).join('');
}
