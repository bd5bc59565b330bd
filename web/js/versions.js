// A turn's versions (docs/api.md, Versions): the "‹ 2/3 ›" control of a
// message with more than one version. versionTarget is DOM-free (tested
// under node: tests/web/test_votes.mjs); the control's buttons go back to
// the toolbar's click handler as the actions version-prev / version-next.
//
// The buttons are never `disabled` (a disabled button drops the focus a
// keyboard user had on it): at either end they are aria-disabled, and the
// arrow keys move between versions while the control has the focus.

import { icon } from './icons.js';

// The version (1-based) a step of -1 or +1 goes to, or null at either end.
export function versionTarget(m, step) {
  const count = Number(m.version_count) || 1;
  const index = Number(m.version_index) || 1;
  const n = index + step;
  return n >= 1 && n <= count ? n : null;
}

function arrow(action, label, iconName) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'icon-button version-step';
  b.dataset.action = action;
  b.setAttribute('aria-label', label);
  b.title = label;
  b.append(icon(iconName));
  return b;
}

export function versionNav() {
  const nav = document.createElement('div');
  nav.className = 'version-nav';
  nav.setAttribute('role', 'group');
  nav.setAttribute('aria-label', 'Versions');
  nav.hidden = true;
  const label = document.createElement('span');
  label.className = 'version-label';
  label.setAttribute('aria-live', 'polite');
  nav.append(arrow('version-prev', 'Previous version', 'prev'), label, arrow('version-next', 'Next version', 'next'));
  nav.addEventListener('keydown', (ev) => {
    const action = { ArrowLeft: 'version-prev', ArrowRight: 'version-next' }[ev.key];
    if (!action) return;
    ev.preventDefault();
    nav.querySelector(`button[data-action="${action}"]`).click();
  });
  return nav;
}

export function updateVersionNav(nav, m, busy) {
  const count = Number(m.version_count) || 1;
  nav.hidden = count < 2;
  if (nav.hidden) return;
  const index = Number(m.version_index) || 1;
  const label = nav.querySelector('.version-label');
  // Only a change is written (and so announced).
  if (label.textContent !== `${index}/${count}`) label.textContent = `${index}/${count}`;
  nav.setAttribute('aria-label', `Version ${index} of ${count}`);
  nav.setAttribute('aria-busy', busy ? 'true' : 'false');
  for (const [action, step] of [['version-prev', -1], ['version-next', 1]]) {
    const b = nav.querySelector(`button[data-action="${action}"]`);
    b.setAttribute('aria-disabled', versionTarget(m, step) === null || busy ? 'true' : 'false');
  }
}
