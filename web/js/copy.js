// Copy buttons: a message's text (the toolbar's Copy) and a code block's
// (markdown.js decorateCode). The button says "Copied" for a moment; a
// browser that refuses the clipboard gets a notice.

import { icon } from './icons.js';
import { announce, notify } from './view.js';

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    notify('Copying failed: this browser did not allow the clipboard.', 'error');
    return;
  }
  announce('Copied.');
  const label = button && button.querySelector('.copy-label, .action-label');
  if (!label) return;
  if (!button.dataset.copied) button.dataset.label = label.textContent;
  button.dataset.copied = 'true';
  label.textContent = 'Copied';
  clearTimeout(button.copiedTimer);
  button.copiedTimer = setTimeout(() => {
    delete button.dataset.copied;
    label.textContent = button.dataset.label;
  }, 1500);
}

export function copyButton(getText, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'icon-button copy-code';
  b.setAttribute('aria-label', label);
  b.title = label;
  const text = document.createElement('span');
  text.className = 'copy-label';
  text.textContent = 'Copy';
  b.append(icon('copy'), text);
  b.addEventListener('click', () => copyText(getText(), b));
  return b;
}
