// web/js/dashboard.js under node: series, the SVG chart, the audit path
// and the exports.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { auditDays, auditPath, barChart, escapeXml, feedbackRows, seriesByDay, toCsv, toJsonl } from '../../web/js/dashboard.js';

const ANALYTICS = {
  days: [
    { date: '2026-12-01', models: [{ model: 'a', regenerations: 2 }, { model: 'b', regenerations: 3 }] },
    { date: '2026-12-02', models: [{ model: 'a', regenerations: 0 }] },
  ],
};

test('a counter per day, summed over the models', () => {
  assert.deepEqual(seriesByDay(ANALYTICS, 'regenerations'), [
    { date: '2026-12-01', value: 5 }, { date: '2026-12-02', value: 0 },
  ]);
  assert.deepEqual(seriesByDay({}, 'turns'), []);
  assert.deepEqual(seriesByDay(ANALYTICS, 'nothing'), [
    { date: '2026-12-01', value: 0 }, { date: '2026-12-02', value: 0 },
  ]);
});

test('the chart: one bar per day scaled to the largest, text escaped', () => {
  const svg = barChart([{ date: 'd1', value: 4 }, { date: 'd2', value: 2 }], { title: 'a<b', width: 100, height: 140 });
  const heights = [...svg.matchAll(/<rect class="bar"[^>]* height="(\d+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual(heights, [100, 50]);
  assert.match(svg, /a&lt;b \(max 4\)/);
  assert.match(svg, /<title>d1: 4<\/title>/);
  assert.doesNotMatch(svg, /a<b/);
  assert.match(barChart([], { title: 'x' }), /no actions in this range/);
  assert.equal(escapeXml(`<&"'>`), '&lt;&amp;&quot;&#39;&gt;');
});

test('the audit path keeps the filters that are set', () => {
  assert.equal(auditPath({}), '/api/admin/audit');
  assert.equal(auditPath({ user: ' bob ', action: '', session: 's 1', limit: 50, other: 'x' }),
    '/api/admin/audit?user=bob&session=s+1&limit=50');
});

test('a day range as audit filters: the last day included', () => {
  assert.deepEqual(auditDays('2026-12-01', '2026-12-04'), { from: '2026-12-01', to: '2026-12-04T23:59:59.999Z' });
  assert.deepEqual(auditDays('', ''), {});
  assert.equal(auditPath({ action: 'feedback', ...auditDays('', '2026-12-04') }),
    '/api/admin/audit?action=feedback&to=2026-12-04T23%3A59%3A59.999Z');
});

test('feedback rows and their CSV and JSONL', () => {
  const rows = feedbackRows([
    { action_type: 'feedback', created_at: 't2', user_id: 'u', session_id: 's', message_id: 'm',
      details: { feedback_type: 'downvote', reason: 'too "long", really\nyes' } },
    { action_type: 'edit', created_at: 't1' },
    { action_type: 'feedback', created_at: 't0', user_id: '=cmd', session_id: 's', message_id: 'm',
      details: { feedback_type: 'upvote', reason: null } },
  ]);
  assert.equal(rows.length, 2);
  assert.equal(toCsv(rows),
    'created_at,user_id,session_id,message_id,feedback_type,reason\r\n' +
    't2,u,s,m,downvote,"too ""long"", really\nyes"\r\n' +
    "t0,'=cmd,s,m,upvote,\r\n");
  const lines = toJsonl(rows).split('\n');
  assert.equal(lines.length, 3);
  assert.deepEqual(JSON.parse(lines[0]).reason, 'too "long", really\nyes');
  assert.equal(toJsonl([]), '');
});
