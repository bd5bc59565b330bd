#!/usr/bin/env python3
"""tests/schema/bodies.py BUILD_DIR: real responses against the OpenAPI document.

A fixed scenario, no random generation: starts a mesh with `./chatmesh up
--detach` (the services of BUILD_DIR, a temp CHATMESH_DATA_DIR, a free
loopback port, rate limits out of the way), keeps a session's SSE stream
open, and drives every operation of the gateway's own /api/openapi.json:
create, ask, stream, regenerate, cancel, continue, vote, withdraw, edit,
versions, history, delete and restore (a message and a session), rename,
export (json, markdown), analytics, tasks, the operators' routes, probes,
and some errors. Each JSON response body is validated (openapi-schema-
validator, OAS 3.0 rules: nullable) against the schema the document gives
for its operation, status and content type; each NDJSON line of the audit
export against its entry schema; each SSE event's data, from the open
stream and from POST run_sse's own stream, against the event's schema
(x-chatmesh-events). Then: every operation was answered 200 at least once,
and every event of the document was seen and validated.

--dump prints the bodies instead of validating (for writing the schemas).
openapi-schema-validator is pip-installed into BUILD_DIR/bodies-venv; when
PyPI cannot be reached that fails and the test is skipped (exit 77).
"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
VALIDATOR = 'openapi-schema-validator==0.6.3'
TIMEOUT = 60  # seconds for an answer; a loaded machine under ASan included


def venv_python(build_dir):
    """The venv's python with openapi-schema-validator, or None (skipped)."""
    venv = os.path.join(build_dir, 'bodies-venv')
    python = os.path.join(venv, 'bin', 'python3')
    probe = [python, '-c', 'import openapi_schema_validator']
    if os.path.exists(python) and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run(['/usr/bin/python3', '-m', 'venv', venv], check=True)
    pip = subprocess.run([python, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', VALIDATOR],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        print(f'SKIPPED: {VALIDATOR} could not be installed from PyPI (unreachable?)\n{pip.stderr[-500:]}')
        return None
    return python


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Mesh:
    def __init__(self, build_dir):
        self.work = tempfile.mkdtemp(prefix='chatmesh-bodies-')
        self.port = free_port()
        self.env = dict(os.environ, CHATMESH_BUILD_DIR=build_dir, CHATMESH_DATA_DIR=os.path.join(self.work, 'data'),
                        CHATMESH_HTTP_PORT=str(self.port), CHAT_ACTIONS_RATE_LIMIT='1000000',
                        CHAT_REGENERATION_RATE_LIMIT='1000000',
                        # Answers of ~2 s: a regeneration still runs when it is cancelled.
                        CHATMESH_BUILTIN_TOKENS_PER_SEC='60')
        for k in ('CHATMESH_HTTP_LISTEN', 'CHATMESH_JWT_SECRET', 'CHATMESH_JWT_SECRET_FILE', 'CHATMESH_ADMIN_USERS',
                  'CHATMESH_WEB_DIR'):
            self.env.pop(k, None)

    def up(self):
        up = subprocess.run([os.path.join(ROOT, 'chatmesh'), 'up', '--detach'], cwd=self.work, env=self.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
        if up.returncode != 0:
            sys.exit(f'./chatmesh up failed:\n{up.stderr}')
        self.token = self.mint('alice')
        self.admin = self.mint('boss', '--admin')

    def mint(self, user, *extra):
        return subprocess.run([os.path.join(ROOT, 'chatmesh'), 'token', '--user', user, '--ttl', '3600', *extra],
                              cwd=self.work, env=self.env, check=True, capture_output=True, text=True).stdout.strip()

    def down(self):
        subprocess.run([os.path.join(ROOT, 'chatmesh'), 'down'], cwd=self.work, env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    def request(self, method, path, body=None, token=None, accept=None):
        """(status, content type, body bytes) of one request."""
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=TIMEOUT)
        headers = {}
        if token is not False:
            headers['Authorization'] = f'Bearer {token or self.token}'
        if body is not None:
            headers['Content-Type'] = 'application/json'
        if accept:
            headers['Accept'] = accept
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, (r.getheader('Content-Type') or '').split(';')[0].strip(), data


def sse_events(text):
    """[(event name, data text)] of an event stream's frames."""
    out = []
    for frame in re.split(r'\n\n', text):
        name, data = None, []
        for line in frame.split('\n'):
            if line.startswith('event:'):
                name = line[6:].strip()
            elif line.startswith('data:'):
                data.append(line[5:].lstrip(' '))
        if name:
            out.append((name, '\n'.join(data)))
    return out


class Stream(threading.Thread):
    """A session's GET /api/run_sse stream, read until closed."""

    def __init__(self, mesh, session):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection('127.0.0.1', mesh.port, timeout=TIMEOUT)
        self.conn.request('GET', f'/api/run_sse/{session}?access_token={mesh.token}',
                          headers={'Accept': 'text/event-stream'})
        self.sock = self.conn.sock  # http.client forgets it once the answer says Connection: close
        self.response = self.conn.getresponse()
        self.text = ''
        self.lock = threading.Lock()
        self.start()

    def run(self):
        try:
            while True:
                chunk = self.response.read1(65536)
                if not chunk:
                    return
                with self.lock:
                    self.text += chunk.decode('utf-8')
        except (OSError, ValueError, http.client.HTTPException):
            return

    def wait_for(self, event, count=1):
        """Waits until the stream has carried `event` count times."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            with self.lock:
                if sum(1 for name, _ in sse_events(self.text) if name == event) >= count:
                    return
            time.sleep(0.05)  # polling the reader thread's text: the condition awaited
        raise RuntimeError(f'the stream carried no {event} (x{count}) in {TIMEOUT} s')

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        self.join(TIMEOUT)
        with self.lock:
            return sse_events(self.text)


class Checker:
    """Validates bodies against the document; remembers what it saw."""

    def __init__(self, document, dump):
        self.doc = document
        self.dump = dump
        self.failures = []
        self.answered = set()  # (METHOD, pattern) answered 200
        self.events = set()
        self.checked = 0
        self.ops = []
        for pattern, item in document['paths'].items():
            rx = re.compile('^' + re.sub(r'\\\{[^}]+\\\}', '[^/]+', re.escape(pattern)) + '$')
            for method in item:
                self.ops.append((method.upper(), pattern, rx))
        if not dump:
            from openapi_schema_validator import OAS30Validator
            self.validator_class = OAS30Validator

    def operation(self, method, path):
        path = path.split('?')[0]
        hits = [(m, p) for m, p, rx in self.ops if m == method and rx.match(path)]
        #  Literal segments win (/api/messages/tasks/... over {message_id}).
        hits.sort(key=lambda hit: hit[1].count('{'))
        if not hits:
            raise RuntimeError(f'{method} {path}: no operation in the document')
        return hits[0]

    def validate(self, where, schema, value):
        self.checked += 1
        if self.dump:
            print(f'--- {where}\n{json.dumps(value, indent=1)[:3000]}')
            return
        for error in self.errors(schema, value)[:5]:
            self.failures.append(f'{where}: {error}')

    def errors(self, schema, value):
        """What is wrong with value as schema (refs into the document's
        components resolve against the root: the schema sits beside them)."""
        rooted = {'allOf': [schema], 'components': self.doc['components']}
        errors = sorted(self.validator_class(rooted).iter_errors(value), key=lambda e: list(e.absolute_path))
        return [f"at /{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}" for e in errors]

    def refuses(self):
        """The validator is live: bodies one field off are refused."""
        health = {'$ref': '#/components/schemas/Health'}
        good = {'status': 'ok', 'pid': 1}
        bad = [dict(good, stray=1), {'status': 'ok'}, dict(good, pid='1'), dict(good, status='up')]
        problems = [] if not self.errors(health, good) else [f'{good} refused as Health']
        problems += [f'{body} passed as Health' for body in bad if not self.errors(health, body)]
        stopped = {'$ref': '#/components/schemas/Event_regeneration_error'}
        event = {'sessionId': 's', 'timestamp': '2026-01-01T00:00:00.000Z', 'taskId': 't', 'messageId': 'm',
                 'error': 'cancelled', 'finishReason': None}
        if self.errors(stopped, event):
            problems.append(f'{event} refused as Event_regeneration_error')
        if not self.errors(stopped, dict(event, finishReason='tired')):
            problems.append('finishReason tired passed as Event_regeneration_error')
        self.failures += ['validator: ' + p for p in problems]

    def response(self, method, path, status, ctype, data):
        """Validates one response; returns its JSON (or text)."""
        m, pattern = self.operation(method, path)
        where = f'{method} {path.split("?")[0]} {status} {ctype}'
        responses = self.doc['paths'][pattern][m.lower()]['responses']
        spec = responses.get(str(status))
        if spec is None:
            self.failures.append(f'{where}: the document has no {status} response')
            return None
        content = spec.get('content', {})
        if ctype not in content:
            self.failures.append(f'{where}: the document has no {ctype} body for {status}')
            return None
        schema = content[ctype]['schema']
        if status == 200:
            self.answered.add((m, pattern))
        if ctype == 'application/json':
            value = json.loads(data)
            self.validate(where, schema, value)
            return value
        if ctype == 'application/x-ndjson':
            lines = [json.loads(line) for line in data.decode().split('\n') if line]
            if not lines:
                self.failures.append(f'{where}: no lines')
            for i, line in enumerate(lines):
                self.validate(f'{where} line {i + 1}', content[ctype]['x-chatmesh-line'], line)
            return lines
        if ctype == 'text/event-stream':
            events = sse_events(data.decode())
            self.stream_events(where, events)
            return events
        return data.decode()

    def stream_events(self, where, events):
        schemas = self.doc['paths']['/api/run_sse/{session_id}']['get']['responses']['200']['content'][
            'text/event-stream']['x-chatmesh-events']
        for name, text in events:
            if name not in schemas:
                self.failures.append(f'{where}: event {name} is not in the document')
                continue
            self.events.add(name)
            self.validate(f'{where} event {name}', schemas[name], json.loads(text))


def scenario(mesh, check):
    def call(method, path, body=None, want=200, token=None, accept=None):
        status, ctype, data = mesh.request(method, path, body, token, accept)
        if status != want:
            raise RuntimeError(f'{method} {path}: {status}, not {want}: {data[:300]!r}')
        return check.response(method, path, status, ctype, data)

    def finished(task):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status = call('GET', f'/api/messages/tasks/{task}/status')
            if status['status'] in ('completed', 'failed'):
                return status
            time.sleep(0.05)  # polling the task's status: the condition awaited
        raise RuntimeError(f'task {task} did not finish in {TIMEOUT} s')

    def streaming(task):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status = call('GET', f'/api/messages/tasks/{task}/status')
            if status['status'] != 'pending' and status['progress'] > 0:
                return
            time.sleep(0.05)  # polling the task's status: the condition awaited
        raise RuntimeError(f'task {task} streamed nothing in {TIMEOUT} s')

    # The probes and the document itself.
    call('GET', '/healthz', token=False)
    call('GET', '/readyz', token=False)
    call('GET', '/metrics', token=False)
    call('GET', '/api/openapi.json', token=False)
    call('GET', '/', token=False)

    sid = 's_bodies_' + uuid.uuid4().hex[:12]
    call('GET', f'/api/sessions/{sid}', want=404)
    # The first question, answered as a stream of its own.
    call('POST', f'/api/run_sse/{sid}', {'query': 'What is chatmesh?'}, accept='text/event-stream')
    stream = Stream(mesh, sid)
    ctype = (stream.response.getheader('Content-Type') or '').split(';')[0]
    if stream.response.status != 200 or ctype != 'text/event-stream':
        raise RuntimeError(f'GET /api/run_sse/{sid}: {stream.response.status} {ctype}')
    check.answered.add(('GET', '/api/run_sse/{session_id}'))
    stream.wait_for('connection_status')
    session = call('GET', f'/api/sessions/{sid}')['session']
    question, answer = session['messages'][0]['id'], session['messages'][1]['id']
    # A second question, as JSON.
    data = call('POST', f'/api/run_sse/{sid}', {'query': 'And the store?', 'temperature': 0.5})['data']
    finished(data['task_id'])
    second_answer = data['assistant_message_id']

    # Regenerate, then switch versions.
    task = call('POST', f'/api/messages/{answer}/regenerate', {'instruction': 'shorter'})['data']['task_id']
    stream.wait_for('thought_process_complete')
    finished(task)
    call('POST', f'/api/messages/{answer}/versions/1/activate')
    call('POST', f'/api/messages/{answer}/versions/2/activate')
    # Cancel a running regeneration, then continue the stopped answer.
    task = call('POST', f'/api/messages/{second_answer}/regenerate', {})['data']['task_id']
    streaming(task)
    call('POST', f'/api/messages/tasks/{task}/cancel')
    finished(task)
    call('POST', f'/api/messages/tasks/{task}/cancel', want=409)
    task = call('POST', f'/api/messages/{second_answer}/continue')['data']['task_id']
    finished(task)

    # Votes.
    call('POST', f'/api/messages/{answer}/feedback', {'feedback_type': 'upvote'})
    call('POST', f'/api/messages/{answer}/feedback',
         {'feedback_type': 'downvote', 'reason': 'too long', 'metadata': {'source': 'test'}, 'version': 1})
    call('GET', f'/api/messages/{answer}/feedback')
    call('POST', f'/api/messages/{answer}/feedback', {'feedback_type': 'upvote'})
    call('DELETE', f'/api/messages/{answer}/feedback')
    call('DELETE', f'/api/messages/{answer}/feedback')

    # Edits: an answer in place, a question with a new branch.
    call('PUT', f'/api/messages/{answer}', {'content': 'An edited answer.'})
    data = call('PUT', f'/api/messages/{question}', {'content': 'What is chatmesh, briefly?'})['data']
    finished(data['regeneration_task_id'])
    call('PUT', f'/api/messages/{question}', {'content': 'Without a new answer', 'trigger_regeneration': False})
    call('GET', f'/api/messages/{question}/history')
    call('GET', f'/api/messages/{answer}/history')
    call('POST', f'/api/messages/{question}/versions/1/activate')

    # Session views.
    call('GET', f'/api/sessions/{sid}')
    call('GET', '/api/sessions')
    call('GET', '/api/sessions?limit=1')
    call('PATCH', f'/api/sessions/{sid}', {'title': 'About chatmesh'})
    call('GET', f'/api/sessions/{sid}/export?format=json')
    call('GET', f'/api/sessions/{sid}/export?format=markdown')
    call('GET', f'/api/sessions/{sid}/analytics')

    # Deletes and their undo.
    call('DELETE', f'/api/messages/{second_answer}?scope=message')
    call('POST', f'/api/messages/{second_answer}/restore')
    call('DELETE', f'/api/messages/{answer}')
    call('POST', f'/api/messages/{answer}/restore')
    call('POST', f'/api/messages/{answer}/restore', want=409)
    stream.wait_for('message_restored', 2)
    events = stream.close()
    check.stream_events(f'GET /api/run_sse/{sid} (open stream)', events)

    # The stream of a session with a lost history: resync.
    call('DELETE', f'/api/sessions/{sid}')
    call('POST', f'/api/sessions/{sid}/restore')

    # Operators.
    call('GET', '/api/admin/audit', token=mesh.admin)
    call('GET', '/api/admin/audit?limit=2', token=mesh.admin)
    call('GET', '/api/admin/audit', token=mesh.admin, accept='application/x-ndjson')
    call('GET', '/api/admin/audit/verify', token=mesh.admin)
    call('GET', '/api/admin/analytics', token=mesh.admin)
    call('GET', '/api/admin/analytics', want=403)

    # Errors: each has its status's schema.
    call('GET', '/api/sessions', token=False, want=401)
    call('POST', f'/api/run_sse/{sid}', {'query': ' '}, want=422)
    call('POST', f'/api/messages/{question}/regenerate', {}, want=400)
    call('GET', '/api/messages/tasks/regen_none/status', want=404)


def main():
    args = [a for a in sys.argv[1:] if a != '--dump']
    dump = '--dump' in sys.argv[1:]
    if len(args) != 1:
        sys.exit('usage: tests/schema/bodies.py [--dump] BUILD_DIR')
    build_dir = os.path.realpath(args[0])
    if not dump and os.environ.get('CHATMESH_BODIES_VENV') != '1':
        python = venv_python(build_dir)
        if not python:
            return 77
        env = dict(os.environ, CHATMESH_BODIES_VENV='1')
        return subprocess.run([python, os.path.abspath(__file__), build_dir], env=env).returncode
    mesh = Mesh(build_dir)
    try:
        mesh.up()
        _, _, text = mesh.request('GET', '/api/openapi.json', token=False)
        check = Checker(json.loads(text), dump)
        if not dump:
            check.refuses()
        scenario(mesh, check)
    finally:
        mesh.down()
    if dump:
        return 0
    missing = sorted(f'{m} {p}' for m, p, _ in check.ops if (m, p) not in check.answered)
    if missing:
        check.failures.append('operations never answered 200: ' + ', '.join(missing))
    all_events = set(check.doc['paths']['/api/run_sse/{session_id}']['get']['responses']['200']['content'][
        'text/event-stream']['x-chatmesh-events'])
    unseen = sorted(all_events - check.events)
    if unseen:
        check.failures.append('events never seen: ' + ', '.join(unseen))
    for failure in check.failures:
        print('FAIL ' + failure)
    print(f'{check.checked} bodies and events validated, {len(check.answered)} operations answered, '
          f'{len(check.events)} events seen; {len(check.failures)} failures')
    return 1 if check.failures else 0


if __name__ == '__main__':
    sys.exit(main())
