// The operators' dashboard without the DOM (docs/api.md, "Operators"):
// analytics into daily series, series into an inline SVG bar chart, the
// audit filters into a request path, and the feedback table's CSV and
// JSONL exports. admin.js draws what these return.

const XML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeXml(text) {
  return String(text).replace(/[&<>"']/g, (c) => XML_ESCAPES[c]);
}

// [{date, value}] of one counter, summed over the models, one per day of
// the analytics reply (days without actions are not in the reply).
export function seriesByDay(analytics, counter) {
  const days = (analytics && Array.isArray(analytics.days)) ? analytics.days : [];
  return days.map((day) => ({
    date: day.date,
    value: (day.models || []).reduce((sum, row) => sum + (Number(row[counter]) || 0), 0),
  }));
}

// An SVG bar chart of series (no external assets): one bar per day with a
// <title> for its value, the largest value on the axis. Empty series: a
// chart that says so.
export function barChart(series, { title = '', width = 480, height = 160 } = {}) {
  const top = 20;
  const bottom = 20;
  const plot = height - top - bottom;
  const max = Math.max(1, ...series.map((point) => point.value));
  const step = series.length ? width / series.length : width;
  const bars = series.map((point, i) => {
    const h = Math.round((point.value / max) * plot);
    const x = Math.round(i * step + step * 0.1);
    const w = Math.max(1, Math.round(step * 0.8));
    return `<rect class="bar" x="${x}" y="${top + plot - h}" width="${w}" height="${h}">` +
      `<title>${escapeXml(point.date)}: ${point.value}</title></rect>`;
  });
  const label = series.length
    ? `<text class="axis" x="0" y="${height - 4}">${escapeXml(series[0].date)}</text>` +
      `<text class="axis" x="${width}" y="${height - 4}" text-anchor="end">${escapeXml(series[series.length - 1].date)}</text>`
    : `<text class="axis" x="${width / 2}" y="${top + plot / 2}" text-anchor="middle">no actions in this range</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 ${width} ${height}" ` +
    `width="${width}" height="${height}" aria-label="${escapeXml(title)}">` +
    `<text class="chart-title" x="0" y="14">${escapeXml(title)} (max ${max})</text>` +
    bars.join('') + label + '</svg>';
}

const AUDIT_FILTERS = ['user', 'session', 'action', 'from', 'to', 'limit', 'cursor'];

// The audit request path of the filter form's values (empty ones left out).
export function auditPath(filters) {
  const query = new URLSearchParams();
  for (const name of AUDIT_FILTERS) {
    const value = filters && filters[name] != null ? String(filters[name]).trim() : '';
    if (value) query.set(name, value);
  }
  const text = query.toString();
  return `/api/admin/audit${text ? `?${text}` : ''}`;
}

// The audit filters of the dashboard's day range (YYYY-MM-DD, inclusive,
// as for analytics). The audit reads a bare date as that day's start, so
// `to` becomes its last millisecond: the votes of the last day are in.
export function auditDays(from, to) {
  const range = {};
  if (from) range.from = from;
  if (to) range.to = `${to}T23:59:59.999Z`;
  return range;
}

export const FEEDBACK_COLUMNS = ['created_at', 'user_id', 'session_id', 'message_id', 'feedback_type', 'reason'];

// The feedback table's rows: the audit entries of votes, newest first.
export function feedbackRows(entries) {
  return (entries || [])
    .filter((entry) => entry && entry.action_type === 'feedback')
    .map((entry) => ({
      created_at: entry.created_at,
      user_id: entry.user_id,
      session_id: entry.session_id,
      message_id: entry.message_id,
      feedback_type: entry.details ? entry.details.feedback_type : null,
      reason: entry.details ? entry.details.reason : null,
    }));
}

// One CSV field (RFC 4180): quoted when it holds a comma, quote or line
// break; a leading = + - @ is prefixed with ' so a spreadsheet does not run
// it as a formula.
function csvField(value) {
  let text = value == null ? '' : String(value);
  if (/^[=+\-@]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows, columns = FEEDBACK_COLUMNS) {
  const lines = [columns.join(',')];
  for (const row of rows) lines.push(columns.map((name) => csvField(row[name])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function toJsonl(rows) {
  return rows.map((row) => JSON.stringify(row)).join('\n') + (rows.length ? '\n' : '');
}
