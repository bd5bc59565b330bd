#!/usr/bin/env python3
"""A stand-in for the chatmesh gateway, for frontend work without the mesh.

It serves web/ and implements the parts of docs/api.md the frontend uses
(sessions with paging, rename, delete and restore, export, run_sse,
regenerate, continue, edit and its history, delete with either scope and
restore, feedback, the SSE stream with ids and Last-Event-ID replay) in
memory, with a fake streaming generator. It keeps no versions: every turn
has one.
Its events are named and checked by web/js/events.js (from proto/cm_event.h):
an event the mesh would not send raises instead of reaching the page.
Tokens are read, not verified: this is a test double, never a server.

    python3 tests/browser/mock_gateway.py --port 18090 [--undo-seconds 30]
    python3 tests/browser/mock_gateway.py --print-token alice [--ttl SECONDS]
"""
import argparse
import base64
import json
import os
import queue
import re
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'web')
SESSION_RE = re.compile(r'^[A-Za-z0-9_-]{1,128}$')
EVENTS_JS = os.path.join(WEB_DIR, 'js', 'events.js')
# The gateway's error codes the mock answers with, and their statuses: a
# copy of rows of GW_HTTP_ERRORS (gateway/gw_errors.h). tests/browser/
# test_mock_tables.py holds it to the generated OpenAPI document.
ERRORS = {
    'invalid_json': 400, 'invalid_session_id': 400, 'invalid_message_id': 400,
    'not_assistant_message': 400, 'unauthorized': 401, 'not_found': 404,
    'method_not_allowed': 405, 'conflict': 409, 'invalid_state': 409, 'undo_expired': 410,
    'invalid_field': 422, 'empty_field': 422, 'field_too_long': 422, 'rate_limited': 429,
}
# The frontend's libraries as the gateway serves them at /lib/NAME: a copy
# of GW_WEB_LIBS_DEFAULT (gateway/gw_static.h), Debian's files.
LIBS = {
    'marked.js': '/usr/share/javascript/marked/marked.min.js',
    'purify.js': '/usr/share/nodejs/dompurify/dist/purify.min.js',
    'highlight.js': '/usr/share/javascript/highlight.js/highlight.min.js',
}
TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
         '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml'}


def now():
    return datetime.now(timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def until_iso():
    """When a delete made now can no longer be undone."""
    at = datetime.fromtimestamp(time.time() + MESH.undo_seconds, timezone.utc)
    return at.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def load_events(path=EVENTS_JS):
    """web/js/events.js's EVENT_TABLE (generated from proto/cm_event.h): {name: entry}."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    start = text.index('[', text.index('export const EVENT_TABLE'))
    return {e['name']: e for e in json.loads(text[start:text.index('];', start) + 1])}


EVENT_TABLE = load_events()
EV = {e['key']: name for name, e in EVENT_TABLE.items()}
JSON_TYPES = {'string': str, 'integer': int, 'boolean': bool, 'array': list, 'object': dict, 'number': (int, float)}


def check_event(event, data):
    """Raises ValueError unless data is what the mesh would send for event."""
    entry = EVENT_TABLE.get(event)
    if not entry:
        raise ValueError(f'{event}: not in web/js/events.js')
    fields = {'sessionId': ('string', True), 'timestamp': ('string', True)}
    fields.update({f['name']: (f['type'], f['required']) for f in entry['fields']})
    for key, value in data.items():
        if key not in fields:
            raise ValueError(f'{event}: field {key!r} is not in web/js/events.js')
        kind = JSON_TYPES[fields[key][0]]
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ValueError(f'{event}: field {key!r} has the wrong type')
    for key, (_, required) in fields.items():
        if required and data.get(key) is None:
            raise ValueError(f'{event}: missing field {key!r}')


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode()


def make_token(user, ttl=86400):
    head = b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())
    body = b64url(json.dumps({'sub': user, 'exp': int(time.time()) + ttl}).encode())
    return f'{head}.{body}.{b64url(b"mock-signature")}'


def token_user(token):
    try:
        part = token.split('.')[1]
        claims = json.loads(base64.urlsafe_b64decode(part + '=' * (-len(part) % 4)))
        if claims.get('exp', 0) < time.time():
            return None
        return claims.get('sub') or None
    except (ValueError, IndexError, AttributeError):
        return None


class Mesh:
    def __init__(self, delay, undo_seconds=30):
        self.lock = threading.RLock()
        self.undo_seconds = undo_seconds
        self.trash = {}  # message id a DELETE named -> {sid, items: [(index, message)], until}
        self.sessions = {}
        self.votes = {}  # (user, message) -> type
        self.edits = {}  # message id -> its edit history, oldest first
        self.delay = delay
        self.epoch = int(time.time() * 1000)
        self.replayed = 0  # events sent again after a Last-Event-ID
        self.tasks = {}  # task id -> 'running', 'completed' or 'cancelled'

    def publish(self, sid, event, data):
        with self.lock:
            s = self.sessions[sid]
            s['seq'] += 1
            data = dict(data, sessionId=sid, timestamp=now())
            check_event(event, data)
            ev = (f"{self.epoch}-{s['seq']}", event, data)
            s['history'].append(ev)
            del s['history'][:-500]
            for q in list(s['subs']):
                q.put(ev)

    def message(self, sid, mid):
        for m in self.sessions[sid]['messages']:
            if m['id'] == mid:
                return m
        return None

    def generate(self, sid, mid, query, kind, task):
        pub = self.publish
        with self.lock:
            m = self.message(sid, mid)
            if not m:
                return
            # A continue grows the stored text (the first checkpoint the seam).
            prefix = m['content'] + ' ' if kind == 'continue' and m['content'] else ''
            m['metadata']['regenerating'] = True
            # Like the store: while generating, the running thought process.
            running = {'thinkingAbout': query[:60], 'totalSteps': None, 'steps': [], 'conclusion': None}
            m['metadata']['thought_process'] = running
        pub(sid, EV['MESSAGE_REGENERATING'], {'messageId': mid, 'taskId': task, 'originalMessageId': mid, 'userQuery': query})
        pub(sid, EV['THOUGHT_PROCESS_START'], {'messageId': mid, 'taskId': task, 'thinkingAbout': query[:60]})
        words = (f'**Answer** ({kind}) to: {query}\n\n- point one\n- point two with `code`\n\n'
                 'A paragraph with a [link](https://example.org/) and the end.').split(' ')
        steps = 6
        partial = ''
        for i in range(1, steps + 1):
            time.sleep(self.delay)
            with self.lock:
                if self.tasks[task] == 'cancelled':
                    m['metadata']['regenerating'] = False
                    cancelled = True
                    # Like the store: the text seen so far is kept, marked
                    # (in place: the mock keeps no versions).
                    if partial:
                        m['content'] = partial
                        m['metadata']['finish_reason'] = 'cancelled'
                else:
                    cancelled = False
            if cancelled:
                kept = {'content': partial, 'finishReason': 'cancelled'} if partial else {}
                pub(sid, EV['REGENERATION_ERROR'], {'messageId': mid, 'taskId': task, 'error': 'cancelled', **kept})
                return
            partial = prefix + ' '.join(words[: len(words) * i // steps])
            pub(sid, EV['REGENERATION_PROGRESS'], {'messageId': mid, 'taskId': task, 'progress': i * 100 // (steps + 1),
                                               'message': 'Generating…', 'partialContent': partial,
                                               **({'resumed': True} if prefix and i == 1 else {})})
            if i in (2, 4):
                with self.lock:
                    running['steps'].append({'step': i // 2, 'reasoning': f'reasoning {i // 2}'})
                    so_far = [dict(st) for st in running['steps']]
                pub(sid, EV['THOUGHT_PROCESS_STEP'], {'messageId': mid, 'taskId': task, 'step': i // 2,
                                                      'reasoning': f'reasoning {i // 2}', 'steps': so_far})
        content = prefix + ' '.join(words)
        with self.lock:
            self.tasks[task] = 'completed'
            m = self.message(sid, mid)
            if not m:
                return
            m['content'] = content
            m['metadata'].pop('finish_reason', None)
            m['metadata'].update(regenerating=False, regenerated=m['metadata']['regenerated'] or kind in ('regenerate', 'edit'), model='mock',
                                 thought_process={'thinkingAbout': query[:60], 'totalSteps': 2, 'conclusion': 'done',
                                                  'steps': [{'step': 1, 'reasoning': 'reasoning 1'},
                                                            {'step': 2, 'reasoning': 'reasoning 2'}]})
        pub(sid, EV['THOUGHT_PROCESS_COMPLETE'], {'messageId': mid, 'taskId': task, 'conclusion': 'done', 'totalSteps': 2})
        pub(sid, EV['MESSAGE_REGENERATED'], {'messageId': mid, 'taskId': task, 'content': content})


MESH = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, body, headers=None):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def fail(self, code, error, headers=None):
        self.send_json(ERRORS[code], {'success': False, 'error': error, 'code': code}, headers)

    def user(self, query):
        auth = self.headers.get('Authorization', '')
        token = auth[7:] if auth.startswith('Bearer ') else (query.get('access_token') or [''])[0]
        return token_user(token) if token else None

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        try:
            return json.loads(self.rfile.read(n) or b'{}')
        except ValueError:
            return None

    def do_GET(self):
        self.route('GET')

    def do_POST(self):
        self.route('POST')

    def do_PUT(self):
        self.route('PUT')

    def do_DELETE(self):
        self.route('DELETE')

    def do_PATCH(self):
        self.route('PATCH')

    def static(self, path):
        rel = 'index.html' if path in ('', '/') else path.lstrip('/')
        if rel.startswith('lib/'):
            full = LIBS.get(rel[4:], '')
        else:
            full = os.path.realpath(os.path.join(WEB_DIR, rel))
            if not full.startswith(os.path.realpath(WEB_DIR) + os.sep):
                full = ''
        if not full or not os.path.isfile(full):
            return self.fail('not_found', 'No such page.')
        raw = open(full, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Type', TYPES.get(os.path.splitext(full)[1], 'application/octet-stream'))
        self.send_header('Content-Length', str(len(raw)))
        self.send_header('Content-Security-Policy', "default-src 'self'")
        self.send_header('Cache-Control', 'no-cache')
        self.end_headers()
        self.wfile.write(raw)

    def route(self, method):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path == '/__mock/drop' and method == 'POST':
            # Cut every SSE stream, asking browsers to wait before reconnecting,
            # so a test can act while they are away and watch the replay.
            with MESH.lock:
                for s in MESH.sessions.values():
                    for q in s['subs']:
                        q.put(None)
            return self.send_json(200, {'success': True})
        if path == '/__mock/sessions' and method == 'POST':
            # ?user=U&count=N: N sessions of U, older than any other, so the
            # session list has pages to walk.
            user, count = query.get('user', ['uitest'])[0], int(query.get('count', ['0'])[0])
            with MESH.lock:
                for i in range(count):
                    sid = f's_seed{i:04d}'
                    at = f'2020-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z'
                    MESH.sessions[sid] = {'session_id': sid, 'owner': user, 'title': f'Seeded session {i}', 'created_at': at,
                                          'updated_at': at, 'messages': [], 'subs': [], 'history': [], 'seq': 0}
            return self.send_json(200, {'success': True})
        if path == '/__mock/stats' and method == 'GET':
            return self.send_json(200, {'success': True, 'replayed': MESH.replayed})
        if not path.startswith('/api/'):
            return self.static(path) if method == 'GET' else self.fail('method_not_allowed', 'No.')
        # The body is read before anything is refused: left unread on a
        # kept-alive connection, it would be taken for the next request.
        body = self.body() if method in ('POST', 'PUT', 'PATCH') else None
        user = self.user(query)
        if not user:
            return self.fail('unauthorized', 'A valid access token is required.')
        parts = [unquote(p) for p in path.split('/')[2:]]
        if method in ('POST', 'PUT', 'PATCH') and body is None:
            return self.fail('invalid_json', 'The request body is not valid JSON.')
        with MESH.lock:
            return self.api(method, parts, user, body, query)

    def owned(self, sid, user):
        """The user's session sid, unless it is deleted."""
        s = MESH.sessions.get(sid)
        return s if s and s['owner'] == user and not s.get('deleted_until') else None

    def sessions_page(self, user, query):
        """GET /api/sessions: newest first (ties by id), limit and cursor."""
        mine = sorted((s for s in MESH.sessions.values() if s['owner'] == user and not s.get('deleted_until')),
                      key=lambda s: (s['updated_at'], s['session_id']), reverse=True)
        limit = int((query.get('limit') or ['100'])[0])
        if not 1 <= limit <= 1000:
            return self.fail('invalid_field', 'limit must be 1 to 1000.')
        start = int((query.get('cursor') or ['0'])[0])
        page = mine[start:start + limit]
        items = [{k: s[k] for k in ('session_id', 'title', 'created_at', 'updated_at')} | {'message_count': len(s['messages'])}
                 for s in page]
        more = start + limit < len(mine)
        return self.send_json(200, {'success': True, 'sessions': items, 'next_cursor': str(start + limit) if more else None})

    def session_tools(self, method, parts, user, body, query):
        """PATCH, DELETE, restore and export of a session."""
        sid = parts[1]
        s = MESH.sessions.get(sid)
        if not s or s['owner'] != user:
            return self.fail('not_found', 'That session does not exist.')
        if parts[2:] == ['restore'] and method == 'POST':
            if not s.get('deleted_until'):
                return self.fail('conflict', 'That session is not deleted.')
            if time.time() > s['deleted_until']:
                return self.fail('undo_expired', 'The time to undo that delete is over.')
            del s['deleted_until']
            MESH.publish(sid, EV['SESSION_UPDATED'], {'status': 'session_restored'})
            return self.send_json(200, {'success': True, 'session_id': sid, 'operation': 'session_restore', 'timestamp': now(),
                                        'data': {'restored_count': len(s['messages']), 'restored_message_ids': [m['id'] for m in s['messages']]}})
        if s.get('deleted_until'):
            return self.fail('not_found', 'That session does not exist.')
        if parts[2:] == [] and method == 'PATCH':
            title = body.get('title')
            if not isinstance(title, str):
                return self.fail('invalid_field', "The field 'title' must be a string.")
            title = title.strip(' ')
            if not title:
                return self.fail('empty_field', "The field 'title' must not be empty.")
            if len(title) > 200:
                return self.fail('field_too_long', "The field 'title' is longer than 200 characters.")
            before, s['title'] = s['title'], title
            MESH.publish(sid, EV['SESSION_UPDATED'], {'status': 'session_renamed'})
            return self.send_json(200, {'success': True, 'session_id': sid, 'operation': 'session_rename', 'timestamp': now(),
                                        'data': {'title': title, 'previous_title': before}})
        if parts[2:] == [] and method == 'DELETE':
            s['deleted_until'] = time.time() + MESH.undo_seconds
            MESH.publish(sid, EV['SESSION_UPDATED'], {'status': 'session_deleted'})
            return self.send_json(200, {'success': True, 'session_id': sid, 'operation': 'session_delete', 'timestamp': now(),
                                        'data': {'deleted_count': len(s['messages']), 'scope': 'session', 'undo_until': until_iso(),
                                                 'deleted_message_ids': [m['id'] for m in s['messages']]}})
        if parts[2:] == ['export'] and method == 'GET':
            fmt = (query.get('format') or ['json'])[0]
            if fmt == 'markdown':
                text = f"# {s['title']}\n" + ''.join(f"\n## {m['role'].capitalize()}\n\n{m['content']}\n" for m in s['messages'])
                return self.send_json(200, {'success': True, 'session_id': sid, 'format': 'markdown', 'exported_at': now(), 'content': text})
            turns = [{'message_id': m['id'], 'role': m['role'], 'timestamp': m['timestamp'], 'version_index': 1, 'version_count': 1,
                      'on_active_path': True, 'branch': None,
                      'versions': [{'version_index': 1, 'version_id': m['id'], 'content': m['content'], 'model': m['metadata'].get('model'),
                                    'regenerated': m['metadata']['regenerated'], 'edited': m['metadata']['edited'],
                                    'created_at': m['timestamp'], 'upvotes': m['metadata']['upvotes'],
                                    'downvotes': m['metadata']['downvotes']}]} for m in s['messages']]
            out = {k: s[k] for k in ('session_id', 'title', 'created_at', 'updated_at')}
            out.update(message_count=len(turns), messages=turns)
            return self.send_json(200, {'success': True, 'session_id': sid, 'format': 'json', 'exported_at': now(), 'session': out})
        return self.fail('method_not_allowed', 'No.')

    def find(self, mid, user):
        m = re.match(r'^msg_([0-9a-f]+)_(.+)_(user|assistant|system)$', mid)
        if not m:
            self.fail('invalid_message_id', 'That message id is malformed.')
            return None, None
        s = self.owned(m.group(2), user)
        msg = MESH.message(m.group(2), mid) if s else None
        if not msg:
            self.fail('not_found', 'That message does not exist.')
            return None, None
        return s, msg

    def vote_counts(self, msg):
        """The message's (upvotes, downvotes) from the votes, also kept in its metadata."""
        ups = sum(1 for (u, m), k in MESH.votes.items() if m == msg['id'] and k == 'upvote')
        downs = sum(1 for (u, m), k in MESH.votes.items() if m == msg['id'] and k == 'downvote')
        msg['metadata'].update(upvotes=ups, downvotes=downs)
        return ups, downs

    def api(self, method, parts, user, body, query):
        if parts == ['sessions'] and method == 'GET':
            return self.sessions_page(user, query)
        if len(parts) >= 2 and parts[0] == 'sessions' and not (len(parts) == 2 and method == 'GET'):
            return self.session_tools(method, parts, user, body, query)
        if len(parts) == 2 and parts[0] == 'sessions' and method == 'GET':
            s = self.owned(parts[1], user)
            if not s:
                return self.fail('not_found', 'That session does not exist.')
            out = {k: s[k] for k in ('session_id', 'title', 'created_at', 'updated_at')}
            out.update(message_count=len(s['messages']), messages=s['messages'])
            return self.send_json(200, {'success': True, 'session': out})
        if len(parts) == 2 and parts[0] == 'run_sse':
            sid = parts[1]
            if not SESSION_RE.match(sid):
                return self.fail('invalid_session_id', 'That session id is malformed.')
            if method == 'POST':
                return self.run(sid, user, body)
            s = self.owned(sid, user)
            if not s:
                return self.fail('not_found', 'That session does not exist.')
            return self.stream(s, query)
        if len(parts) == 4 and parts[:2] == ['messages', 'tasks'] and parts[3] == 'cancel' and method == 'POST':
            status = MESH.tasks.get(parts[2])
            if not status:
                return self.fail('not_found', 'That task does not exist.')
            if status != 'running':
                return self.fail('invalid_state', 'The task has already ended.')
            MESH.tasks[parts[2]] = 'cancelled'
            return self.send_json(200, {'success': True, 'task_id': parts[2], 'status': 'failed', 'error_message': 'cancelled'})
        if len(parts) == 3 and parts[0] == 'messages' and parts[2] == 'restore' and method == 'POST':
            return self.restore(parts[1], user)
        if len(parts) >= 2 and parts[0] == 'messages':
            s, msg = self.find(parts[1], user)
            if not msg:
                return None
            sid = s['session_id']
            if parts[2:] == ['regenerate'] and method == 'POST':
                if msg['role'] != 'assistant':
                    return self.fail('not_assistant_message', 'Only assistant messages can be regenerated.')
                if msg['metadata']['regenerating']:
                    return self.fail('conflict', 'A regeneration is already running for this message.')
                msg['metadata']['regenerating'] = True
                task = self.spawn(sid, msg['id'], 'regenerate')
                return self.send_json(200, {'success': True, 'message_id': msg['id'], 'session_id': sid, 'operation': 'regenerate',
                                            'timestamp': now(), 'data': {'task_id': task, 'original_message_id': msg['id']}})
            if parts[2:] == ['feedback'] and method == 'POST':
                kind = body.get('feedback_type')
                if kind not in ('upvote', 'downvote'):
                    return self.fail('invalid_field', 'feedback_type must be upvote or downvote.')
                MESH.votes[(user, msg['id'])] = kind
                ups, downs = self.vote_counts(msg)
                MESH.publish(sid, EV['FEEDBACK_SUBMITTED'], {'messageId': msg['id'], 'feedbackId': 'fb_1', 'feedbackType': kind,
                                                          'upvotes': ups, 'downvotes': downs})
                return self.send_json(200, {'success': True, 'feedback_id': 'fb_1', 'message_id': msg['id'], 'session_id': sid, 'timestamp': now()})
            if parts[2:] == ['feedback'] and method == 'DELETE':
                kind = MESH.votes.pop((user, msg['id']), None)
                ups, downs = self.vote_counts(msg)
                if kind:
                    MESH.publish(sid, EV['FEEDBACK_WITHDRAWN'], {'messageId': msg['id'], 'feedbackType': kind,
                                                              'upvotes': ups, 'downvotes': downs})
                return self.send_json(200, {'success': True, 'message_id': msg['id'], 'session_id': sid,
                                            'withdrawn': kind is not None, 'feedback_type': kind, 'timestamp': now(),
                                            'feedback_summary': {'upvotes': ups, 'downvotes': downs, 'total': ups + downs}})
            if parts[2:] == ['feedback'] and method == 'GET':
                md = msg['metadata']
                return self.send_json(200, {'success': True, 'message_id': msg['id'], 'recent_feedback': [], 'timestamp': now(),
                                            'feedback_summary': {'upvotes': md['upvotes'], 'downvotes': md['downvotes'],
                                                                 'total': md['upvotes'] + md['downvotes']}})
            if parts[2:] == ['history'] and method == 'GET':
                edits = MESH.edits.get(msg['id'], [])
                return self.send_json(200, {'success': True, 'message_id': msg['id'], 'edit_count': len(edits),
                                            'history': edits, 'timestamp': now()})
            if parts[2:] == [] and method == 'PUT':
                content = str(body.get('content', '')).strip()
                if not content:
                    return self.fail('empty_field', 'The content must not be empty.')
                old = msg['content']
                msg['content'] = content
                msg['metadata']['edited'] = True
                MESH.edits.setdefault(msg['id'], []).append({'id': 'hist_' + uuid.uuid4().hex, 'original_content': old,
                                                      'edited_content': content, 'edit_timestamp': now(), 'user_id': user})
                MESH.publish(sid, EV['MESSAGE_EDITED'], {'messageId': msg['id'], 'content': content, 'previousContent': old, 'edited': True})
                regen = msg['role'] == 'user' and body.get('trigger_regeneration', True)
                if regen:
                    idx = s['messages'].index(msg)
                    nxt = next((m for m in s['messages'][idx + 1:] if m['role'] == 'assistant'), None)
                    if nxt:
                        nxt['metadata']['regenerating'] = True
                        self.spawn(sid, nxt['id'], 'edit')
                return self.send_json(200, {'success': True, 'message_id': msg['id'], 'session_id': sid, 'operation': 'edit', 'timestamp': now(),
                                            'data': {'original_content': old, 'new_content': content, 'triggered_regeneration': bool(regen),
                                                     'regeneration_task_id': None}})
            if parts[2:] == ['continue'] and method == 'POST':
                if msg['role'] != 'assistant':
                    return self.fail('not_assistant_message', 'Only assistant messages can be continued.')
                if msg['metadata']['regenerating']:
                    return self.fail('conflict', 'A regeneration is already running for this message.')
                if not msg['metadata'].get('finish_reason'):
                    return self.fail('invalid_state', 'That answer is complete.')
                msg['metadata']['regenerating'] = True
                task = self.spawn(sid, msg['id'], 'continue')
                return self.send_json(200, {'success': True, 'message_id': msg['id'], 'session_id': sid, 'operation': 'continue',
                                            'timestamp': now(), 'data': {'task_id': task, 'original_message_id': msg['id'], 'version_index': 1}})
            if parts[2:] == [] and method == 'DELETE':
                scope = (query.get('scope') or ['following'])[0]
                if scope not in ('message', 'following'):
                    return self.fail('invalid_field', "scope must be 'message' or 'following'.")
                idx = s['messages'].index(msg)
                span = range(idx, idx + 1) if scope == 'message' else range(idx, len(s['messages']))
                items = [(i, s['messages'][i]) for i in span]
                gone = [m['id'] for _, m in items]
                s['messages'] = [m for m in s['messages'] if m['id'] not in gone]
                MESH.trash[msg['id']] = {'sid': sid, 'items': items, 'until': time.time() + MESH.undo_seconds}
                MESH.publish(sid, EV['MESSAGE_DELETED'], {'messageId': msg['id'], 'deletedCount': len(gone), 'deletedMessageIds': gone})
                return self.send_json(200, {'success': True, 'message_id': msg['id'], 'session_id': sid, 'operation': 'delete', 'timestamp': now(),
                                            'data': {'deleted_count': len(gone), 'deleted_message_ids': gone, 'scope': scope,
                                                     'undo_until': until_iso()}})
        return self.fail('not_found', 'No such endpoint.')

    def restore(self, mid, user):
        """POST /api/messages/{id}/restore: what the DELETE naming it removed, back in place."""
        t = MESH.trash.get(mid)
        s = t and self.owned(t['sid'], user)
        if not s:
            return self.fail('not_found', 'That message does not exist.')
        if time.time() > t['until']:
            return self.fail('undo_expired', 'The time to undo that delete is over.')
        del MESH.trash[mid]
        for i, m in t['items']:
            s['messages'].insert(min(i, len(s['messages'])), m)
        ids = [m['id'] for _, m in t['items']]
        MESH.publish(t['sid'], EV['MESSAGE_RESTORED'], {'messageId': mid, 'restoredCount': len(ids), 'restoredMessageIds': ids})
        return self.send_json(200, {'success': True, 'message_id': mid, 'session_id': t['sid'], 'operation': 'restore', 'timestamp': now(),
                                    'data': {'restored_count': len(ids), 'restored_message_ids': ids}})

    def spawn(self, sid, mid, kind):
        idx = next(i for i, m in enumerate(MESH.sessions[sid]['messages']) if m['id'] == mid)
        q = next((m['content'] for m in reversed(MESH.sessions[sid]['messages'][:idx]) if m['role'] == 'user'), '')
        task = 'regen_' + uuid.uuid4().hex
        MESH.tasks[task] = 'running'
        threading.Thread(target=MESH.generate, args=(sid, mid, q, kind, task), daemon=True).start()
        return task

    def run(self, sid, user, body):
        q = str(body.get('query', '')).strip()
        if not q:
            return self.fail('empty_field', 'The query must not be empty.')
        if len(q) > 10000:
            return self.fail('field_too_long', 'The query is longer than 10000 characters.')
        if q == 'please rate limit me':
            return self.fail('rate_limited', 'Too many actions.', {'Retry-After': '17'})
        s = MESH.sessions.get(sid)
        if s and s['owner'] != user:
            return self.fail('not_found', 'That session does not exist.')
        if s and s.get('deleted_until'):
            return self.fail('conflict', 'That session was deleted; it can still be restored.')
        if not s:
            s = MESH.sessions[sid] = {'session_id': sid, 'owner': user, 'title': q[:60], 'created_at': now(),
                                      'updated_at': now(), 'messages': [], 'subs': [], 'history': [], 'seq': 0}
        base = {'edited': False, 'regenerating': False, 'regenerated': False, 'upvotes': 0, 'downvotes': 0}
        um = {'id': f'msg_{uuid.uuid4().hex}_{sid}_user', 'role': 'user', 'content': q, 'timestamp': now(), 'metadata': dict(base)}
        am = {'id': f'msg_{uuid.uuid4().hex}_{sid}_assistant', 'role': 'assistant', 'content': '', 'timestamp': now(),
              'metadata': dict(base, regenerating=True)}
        s['messages'] += [um, am]
        s['updated_at'] = now()
        if 'text/event-stream' in self.headers.get('Accept', ''):
            return self.stream(s, {}, until=am['id'], start=lambda: (
                MESH.publish(sid, EV['SESSION_UPDATED'], {'status': 'message_added'}), self.spawn(sid, am['id'], 'answer')))
        MESH.publish(sid, EV['SESSION_UPDATED'], {'status': 'message_added'})
        task = self.spawn(sid, am['id'], 'answer')
        return self.send_json(200, {'success': True, 'data': {'session_id': sid, 'user_message_id': um['id'],
                                                              'assistant_message_id': am['id'], 'task_id': task}})

    def stream(self, s, query, until=None, start=None):
        last = self.headers.get('Last-Event-ID') or (query.get('last_event_id') or [''])[0]
        q = queue.Queue()
        backlog = []
        if last:
            ids = [e[0] for e in s['history']]
            backlog = s['history'][ids.index(last) + 1:] if last in ids else [('', EV['SESSION_UPDATED'], {'status': 'resync', 'resync': True, 'sessionId': s['session_id'], 'timestamp': now()})]
        s['subs'].append(q)
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Cache-Control', 'no-cache')
        self.send_header('X-Accel-Buffering', 'no')
        self.send_header('Connection', 'close')
        self.end_headers()
        if start:
            start()
        MESH.lock.release()  # the stream must not hold the mesh lock
        try:
            self.write_event(('', EV['CONNECTION_STATUS'], {'status': 'connected', 'sessionId': s['session_id'], 'timestamp': now()}))
            for ev in backlog:
                self.write_event(ev)
                MESH.replayed += 1
            while True:
                try:
                    ev = q.get(timeout=15)
                    if ev is None:
                        self.wfile.write(b'retry: 1500\n\n')
                        self.wfile.flush()
                        break
                    self.write_event(ev)
                    if until and ev[1] in (EV['MESSAGE_REGENERATED'], EV['REGENERATION_ERROR']) and ev[2].get('messageId') == until:
                        break
                except queue.Empty:
                    self.wfile.write(b': keepalive\n\n')
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            MESH.lock.acquire()
            if q in s['subs']:
                s['subs'].remove(q)
            self.close_connection = True

    def write_event(self, ev):
        eid, name, data = ev
        check_event(name, data)
        out = (f'id: {eid}\n' if eid else '') + f'event: {name}\ndata: {json.dumps(data)}\n\n'
        self.wfile.write(out.encode())
        self.wfile.flush()


def main():
    global MESH
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--port', type=int, default=18090)
    ap.add_argument('--delay', type=float, default=0.25, help='seconds between streamed chunks')
    ap.add_argument('--undo-seconds', type=int, default=30, help='how long a delete can be undone')
    ap.add_argument('--print-token', metavar='USER')
    ap.add_argument('--ttl', type=int, default=86400, help='seconds the printed token is valid')
    args = ap.parse_args()
    if args.print_token:
        print(make_token(args.print_token, args.ttl))
        return 0
    MESH = Mesh(args.delay, args.undo_seconds)
    server = ThreadingHTTPServer(('127.0.0.1', args.port), Handler)
    server.daemon_threads = True
    print(f'mock gateway on http://127.0.0.1:{args.port}/', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
