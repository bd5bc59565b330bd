#!/usr/bin/env python3
"""tests/docs/run_curl.py BUILD_DIR: docs/api.md's curl examples, run as written.

Starts a mesh with `./chatmesh up --detach` (the services of BUILD_DIR, a
temp CHATMESH_DATA_DIR, a free loopback port, rate limits out of the way),
then runs every ```sh block of docs/api.md in /bin/sh with the variables the
page's "Examples with curl" table names. Each block's `# → <status>` lines
are the statuses its curl calls must answer, in order; `curl` is a shell
function that runs the real curl with one `--write-out` more, on stderr
(method, URL, status), so the command and its output are as written. A
block that changes something (a method other than GET, or a body) gets a
session of its own; one that switches versions gets an answer regenerated
once; RUNNING_TASK is a regeneration started just before the block that
has streamed some text. Last,
every operation of the gateway's /api/openapi.json must have been called by
some block. Prints one line per block and "N passed, N failed"; exits 1 on
a failure.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
DOC = os.path.join(ROOT, 'docs', 'api.md')
TIMEOUT = 60  # seconds for an answer or a block; a loaded machine under ASan included
WRAPPER = "curl() { command curl --write-out '%{stderr}@curl %{method} %{url_effective} %{http_code}\\n' \"$@\"; }\n"
MUTATING = re.compile(r'(-X\s*(POST|PUT|PATCH|DELETE)\b|(^|\s)(-d|--data\S*)\s)')
FIXTURE_VARS = ('SESSION', 'USER_MESSAGE', 'MESSAGE', 'TASK', 'RUNNING_TASK')


def blocks(path):
    """[(line number, text, [expected status])] of the ```sh blocks."""
    out = []
    lines = open(path, encoding='utf-8').read().split('\n')
    i = 0
    while i < len(lines):
        if lines[i].strip() == '```sh':
            start = i + 1
            i += 1
            while lines[i].strip() != '```':
                i += 1
            body = lines[start:i]
            want = [int(m.group(1)) for m in (re.match(r'#\s*→\s*(\d{3})\b', x) for x in body) if m]
            out.append((start, '\n'.join(body) + '\n', want))
        i += 1
    return out


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Mesh:
    def __init__(self, build_dir):
        self.work = tempfile.mkdtemp(prefix='chatmesh-docs-')
        port = free_port()
        self.env = dict(os.environ, CHATMESH_BUILD_DIR=build_dir, CHATMESH_DATA_DIR=os.path.join(self.work, 'data'),
                        CHATMESH_HTTP_PORT=str(port), CHAT_ACTIONS_RATE_LIMIT='1000000',
                        CHAT_REGENERATION_RATE_LIMIT='1000000',
                        # Answers of ~2 s: a regeneration still runs when the cancel example comes.
                        CHATMESH_BUILTIN_TOKENS_PER_SEC='60')
        for k in ('CHATMESH_HTTP_LISTEN', 'CHATMESH_JWT_SECRET', 'CHATMESH_JWT_SECRET_FILE', 'CHATMESH_ADMIN_USERS',
                  'CHATMESH_WEB_DIR'):
            self.env.pop(k, None)
        self.base = f'http://127.0.0.1:{port}'

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

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={'Authorization': f'Bearer {self.token}', 'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return json.loads(r.read())

    def finished(self, task):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status = self.call('GET', f'/api/messages/tasks/{task}/status')['status']
            if status in ('completed', 'failed'):
                if status != 'completed':
                    raise RuntimeError(f'task {task} failed')
                return
            time.sleep(0.05)  # polling the task's status: the condition awaited
        raise RuntimeError(f'task {task} did not finish in {TIMEOUT} s')

    def streaming(self, task):
        """Waits until the task has streamed some text (progress past 0), so
        a cancel keeps text that a continue can grow."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status = self.call('GET', f'/api/messages/tasks/{task}/status')
            if status['status'] != 'pending' and status['progress'] > 0:
                return
            time.sleep(0.05)  # polling the task's status: the condition awaited
        raise RuntimeError(f'task {task} streamed nothing in {TIMEOUT} s')

    def fixture(self, regenerated=False, running=False):
        """A session with one finished exchange: the example variables."""
        sid = 's_docs_' + uuid.uuid4().hex[:12]
        data = self.call('POST', f'/api/run_sse/{sid}', {'query': 'What is chatmesh?'})['data']
        self.finished(data['task_id'])
        fx = {'SESSION': sid, 'USER_MESSAGE': data['user_message_id'], 'MESSAGE': data['assistant_message_id'],
              'TASK': data['task_id']}
        if regenerated:
            self.finished(self.call('POST', f"/api/messages/{fx['MESSAGE']}/regenerate", {})['data']['task_id'])
        if running:
            fx['RUNNING_TASK'] = self.call('POST', f"/api/messages/{fx['MESSAGE']}/regenerate", {})['data']['task_id']
            self.streaming(fx['RUNNING_TASK'])
        return fx


def operations(base):
    """{(METHOD, regex of the path)} of the OpenAPI document."""
    with urllib.request.urlopen(base + '/api/openapi.json', timeout=TIMEOUT) as r:
        doc = json.loads(r.read())
    ops = set()
    for path, item in doc['paths'].items():
        for method in item:
            if method in ('get', 'post', 'put', 'patch', 'delete'):
                ops.add((method.upper(), path, re.compile('^' + re.sub(r'\{[^}]+\}', '[^/]+', re.escape(path).replace(r'\{', '{').replace(r'\}', '}')) + '$')))
    return ops


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: tests/docs/run_curl.py BUILD_DIR')
    examples = blocks(DOC)
    mesh = Mesh(os.path.realpath(sys.argv[1]))
    passed = failed = 0
    called = []
    try:
        mesh.up()
        shared = None
        for line, text, want in examples:
            names = set(re.findall(r'\$\{?([A-Z_]+)', text))
            env = dict(os.environ, BASE=mesh.base, TOKEN=mesh.token, ADMIN_TOKEN=mesh.admin,
                       NEW_SESSION='s_docs_new_' + uuid.uuid4().hex[:12])
            if names & set(FIXTURE_VARS):
                if MUTATING.search(text) or 'RUNNING_TASK' in names or '/versions/' in text:
                    env.update(mesh.fixture(regenerated='/versions/' in text, running='RUNNING_TASK' in names))
                else:
                    shared = shared or mesh.fixture()
                    env.update(shared)
            run = subprocess.run(['/bin/sh', '-c', WRAPPER + text], env=env, capture_output=True, text=True, timeout=TIMEOUT)
            calls = [c.split(' ') for c in re.findall(r'^@curl (.*)$', run.stderr, re.M)]
            called += calls
            got = [int(c[2]) for c in calls]
            where = f'docs/api.md:{line}'
            if want and got == want:
                passed += 1
                print(f'ok   {where}: {" ".join(map(str, got))}', flush=True)
            else:
                failed += 1
                print(f'FAIL {where}: statuses {got}, the page says {want}\n{text}--- stdout:\n{run.stdout[-2000:]}\n'
                      f'--- stderr:\n{run.stderr[-2000:]}', flush=True)
        ops = operations(mesh.base)
    finally:
        mesh.down()
    paths = [(m, re.sub(r'^https?://[^/]+', '', url).split('?')[0]) for m, url, _ in called]
    missing = sorted(f'{m} {p}' for m, p, rx in ops if not any(cm == m and rx.match(cp) for cm, cp in paths))
    if missing:
        failed += 1
        print('FAIL operations without a curl example in docs/api.md: ' + ', '.join(missing))
    else:
        passed += 1
        print(f'ok   every one of the {len(ops)} operations of /api/openapi.json has an example')
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
