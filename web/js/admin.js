// The operators' dashboard page (web/admin.html): draws what
// dashboard.js computes from the admin endpoints (docs/api.md,
// "Operators"), with the token the chat page keeps.
import { readStoredToken } from './auth.js';
import { auditDays, auditPath, barChart, feedbackRows, seriesByDay, toCsv, toJsonl, FEEDBACK_COLUMNS } from './dashboard.js';

const token = readStoredToken();
const status = document.getElementById('dash-status');
const CHARTS = [['turns', 'Turns'], ['answers', 'Answers'], ['regenerations', 'Regenerations'], ['downvotes', 'Down votes']];
let auditNext = null;
let feedback = [];

async function get(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const why = response.status === 403 ? 'This account is not an operator.' : (body && body.error) || `HTTP ${response.status}`;
    throw new Error(why);
  }
  return body;
}

function cells(row, values) {
  for (const value of values) {
    const cell = document.createElement('td');
    cell.textContent = value == null ? '' : String(value);
    row.append(cell);
  }
}

function fill(tableId, rows, values, append = false) {
  const body = document.querySelector(`#${tableId} tbody`);
  if (!append) body.replaceChildren();
  for (const item of rows) {
    const row = document.createElement('tr');
    cells(row, values(item));
    body.append(row);
  }
}

const rate = (value) => (value == null ? '' : `${Math.round(value * 100)} %`);

async function showAnalytics() {
  const from = document.getElementById('range-from').value;
  const to = document.getElementById('range-to').value;
  const query = new URLSearchParams();
  if (from) query.set('from', from);
  if (to) query.set('to', to);
  const analytics = await get(`/api/admin/analytics?${query}`);
  document.getElementById('charts').innerHTML = CHARTS
    .map(([counter, title]) => barChart(seriesByDay(analytics, counter), { title }))
    .join('');
  fill('model-table', analytics.models, (m) => [m.model, m.answers, rate(m.regenerate_rate), rate(m.cancel_rate),
    m.failures, m.upvotes, m.downvotes, m.top_down_reasons.length ? m.top_down_reasons[0].reason : '',
    m.p50_generation_ms, m.p95_generation_ms]);
  const votes = await get(auditPath({ action: 'feedback', ...auditDays(from, to), limit: 1000 }));
  feedback = feedbackRows(votes.entries);
  fill('feedback-table', feedback, (f) => [f.created_at, f.user_id, f.feedback_type, f.reason, f.message_id]);
  document.getElementById('dash').hidden = false;
}

async function showAudit(append) {
  const form = new FormData(document.getElementById('audit-form'));
  const filters = Object.fromEntries(form.entries());
  if (append) filters.cursor = auditNext;
  const page = await get(auditPath(filters));
  fill('audit-table', page.entries, (e) => [e.created_at, e.user_id, e.action_type, e.session_id, e.message_id], append);
  auditNext = page.next_cursor;
  document.getElementById('audit-more').hidden = !auditNext;
}

function download(name, type, text) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  link.click();
  URL.revokeObjectURL(link.href);
}

function guard(work) {
  status.textContent = '';
  work().catch((error) => { status.textContent = error.message; });
}

if (!token) {
  status.textContent = 'Sign in on the chat page first: the dashboard uses the same token.';
}
else {
  const today = new Date();
  document.getElementById('range-to').value = today.toISOString().slice(0, 10);
  document.getElementById('range-from').value = new Date(today - 29 * 86400000).toISOString().slice(0, 10);
  document.getElementById('range-form').addEventListener('submit', (event) => { event.preventDefault(); guard(showAnalytics); });
  document.getElementById('audit-form').addEventListener('submit', (event) => { event.preventDefault(); guard(() => showAudit(false)); });
  document.getElementById('audit-more').addEventListener('click', () => guard(() => showAudit(true)));
  document.getElementById('export-csv').addEventListener('click', () => download('feedback.csv', 'text/csv', toCsv(feedback, FEEDBACK_COLUMNS)));
  document.getElementById('export-jsonl').addEventListener('click', () => download('feedback.jsonl', 'application/x-ndjson', toJsonl(feedback)));
  guard(showAnalytics);
  guard(() => showAudit(false));
}
