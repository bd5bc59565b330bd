// Line icons drawn as inline SVG (no icon font, nothing fetched).

const PATHS = {
  regenerate: ['M20 12a8 8 0 1 1-2.34-5.66', 'M20 4v5h-5'],
  upvote: ['M12 19V5', 'M5 12l7-7 7 7'],
  downvote: ['M12 5v14', 'M19 12l-7 7-7-7'],
  edit: ['M4 20h4L19 9l-4-4L4 16v4z', 'M13.5 6.5l4 4'],
  delete: ['M4 7h16', 'M9 7V4h6v3', 'M6 7l1 13h10l1-13', 'M10 11v6', 'M14 11v6'],
  menu: ['M4 6h16', 'M4 12h16', 'M4 18h16'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  plus: ['M12 5v14', 'M5 12h14'],
  send: ['M4 12l16-8-6 16-3-7-7-1z'],
  stop: ['M7 7h10v10H7z'],
  prev: ['M15 6l-6 6 6 6'],
  next: ['M9 6l6 6-6 6'],
  copy: ['M9 9h10v10H9z', 'M5 15V5h10'],
  check: ['M5 12l5 5 9-10'],
  continue: ['M5 6l6 6-6 6', 'M13 6l6 6-6 6'],
  rename: ['M4 20h4L19 9l-4-4L4 16v4z'],
  download: ['M12 4v11', 'M7 10l5 5 5-5', 'M5 20h14'],
};

const NS = 'http://www.w3.org/2000/svg';

export function icon(name) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '16');
  svg.setAttribute('height', '16');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('icon');
  for (const d of PATHS[name] || []) {
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', d);
    svg.appendChild(path);
  }
  return svg;
}
