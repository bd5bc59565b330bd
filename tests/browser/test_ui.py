#!/usr/bin/env python3
"""End-to-end test of the chat frontend (web/) in headless Chromium.

Runs against a live mesh:
  - CHATMESH_TEST_URL + CHATMESH_TEST_TOKEN: an already running gateway and a
    token for it (the user is the token's `sub`); CHATMESH_TEST_ADMIN_TOKEN,
    an operator's, for the dashboard step (skipped without it);
  - otherwise it starts its own mesh with `./chatmesh up --detach` (temp
    CHATMESH_DATA_DIR, free CHATMESH_HTTP_PORT), gets a token with
    `./chatmesh token --user uitest`, and stops it with `./chatmesh down`;
  - with --mock it runs against tests/browser/mock_gateway.py instead (for
    frontend work while the services are unavailable).

The chat page's steps include the session tools: the undo toast after a
delete (both scopes) and after a session delete, in two windows; the
sidebar's rename; the export downloads; Continue after Stop; the
sidebar's paging (mock only: it can make 120 sessions at once).

Besides the chat page it drives the operators' dashboard (web/admin.html) as
an operator (`./chatmesh token --admin`) and signs in with a token that
expires within the run (`--ttl`); a step the system under test cannot serve
prints "skip".

`--only STEP,STEP` runs those steps (the names it prints) after the ones
every run needs (sign_in, ask_and_stream, second_window); a step that
builds on an earlier one's state needs that one named too (e.g.
`--only regenerate,reload_keeps_thoughts,stop_answer,continue_after_stop`).

Needs Debian's chromium, chromium-driver and python3-selenium. Screenshots go
to build/screenshots/. Prints "N passed, N failed" last; exits 1 on failure.
Synchronisation is by WebDriverWait conditions only, never by sleeping.
"""
import base64
import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

try:
    from selenium import webdriver
except ImportError:
    # Debian's python3-selenium lives in the system interpreter; a pyenv or
    # venv python3 on PATH does not see it.
    if os.path.exists('/usr/bin/python3') and os.path.realpath(sys.executable) != os.path.realpath('/usr/bin/python3'):
        os.execv('/usr/bin/python3', ['/usr/bin/python3'] + sys.argv)
    sys.exit('python3-selenium is missing: apt-get install -y chromium chromium-driver python3-selenium')
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
SHOTS = os.path.join(ROOT, 'build', 'screenshots')
TIMEOUT = float(os.environ.get('CHATMESH_TEST_TIMEOUT', '45'))
UNDO_SECONDS = 12  # CHATMESH_UNDO_SECONDS of the mesh this test starts

XSS = '<script>alert(1)</script> and <img src=x onerror="alert(2)"> and [x](javascript:alert(3))'

# Installs a MutationObserver that remembers what the conversation showed
# between our polls: progress bars, streamed partial content, disabled buttons.
PROBE_JS = r"""
if (!window.__probe) {
  const p = window.__probe = {};
  window.__resetProbe = () => Object.assign(p, {bar: {}, maxProgress: {}, partial: {}, regenDisabled: {}});
  window.__resetProbe();
  const scan = () => {
    for (const m of document.querySelectorAll('#messages .message')) {
      const id = m.dataset.messageId;
      const prog = m.querySelector('.regeneration-progress');
      if (prog && !prog.hidden) {
        p.bar[id] = (p.bar[id] || 0) + 1;
        const v = Number(m.querySelector('.progress-bar').getAttribute('aria-valuenow') || 0);
        p.maxProgress[id] = Math.max(p.maxProgress[id] || 0, v);
        const text = m.querySelector('.message-content').textContent.trim();
        if (m.classList.contains('is-streaming') && text) (p.partial[id] = p.partial[id] || []).push(text.length);
      }
      const rb = m.querySelector('button[data-action="regenerate"]');
      if (rb && rb.disabled) p.regenDisabled[id] = true;
    }
  };
  new MutationObserver(scan).observe(document.getElementById('messages'),
    {subtree: true, childList: true, attributes: true, characterData: true});
  window.__alerts = 0;
  for (const name of ['alert', 'confirm', 'prompt']) {
    const orig = window[name];
    window[name] = function (...args) { window.__alerts += 1; return orig.apply(this, args); };
  }
}
"""

MARKDOWN_JS = r"""
const done = arguments[arguments.length - 1];
const cases = arguments[0];
import('/js/markdown.js').then((m) => done(cases.map((c) => {
  const html = m.renderMarkdown(c);
  const t = document.createElement('template');
  t.innerHTML = html;
  const elements = [...t.content.querySelectorAll('*')].map((e) => ({
    tag: e.tagName.toLowerCase(),
    attrs: [...e.attributes].map((a) => [a.name, a.value]),
  }));
  return {html, elements, text: t.content.textContent};
}))).catch((e) => done({error: String(e)}));
"""


# The steps every run needs (--only runs these and the named ones).
ALWAYS = ('sign_in', 'ask_and_stream', 'second_window')


class Failed(Exception):
    pass


class Skipped(Exception):
    """The system under test cannot do what the step needs (the mock, a given URL)."""


def check(cond, message):
    if not cond:
        raise Failed(message)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def jwt_sub(token):
    part = token.split('.')[1]
    return json.loads(base64.urlsafe_b64decode(part + '=' * (-len(part) % 4)))['sub']


class Mesh:
    """The system under test: a given URL, our own mesh, or the mock."""

    def __init__(self, mock):
        self.mock = mock
        self.proc = None
        self.data_dir = None
        self.env = None
        self.undo_seconds = None  # CHATMESH_UNDO_SECONDS when this test chose it

    def __enter__(self):
        url = os.environ.get('CHATMESH_TEST_URL')
        if url and not self.mock:
            self.url = url.rstrip('/')
            self.token = os.environ.get('CHATMESH_TEST_TOKEN') or sys.exit('CHATMESH_TEST_URL needs CHATMESH_TEST_TOKEN')
        elif self.mock:
            port = free_port()
            script = os.path.join(ROOT, 'tests', 'browser', 'mock_gateway.py')
            self.proc = subprocess.Popen([sys.executable, script, '--port', str(port), '--undo-seconds', str(UNDO_SECONDS)],
                                         stdout=subprocess.PIPE, text=True)
            self.proc.stdout.readline()  # "mock gateway on ..." once it listens
            self.url = f'http://127.0.0.1:{port}'
            self.token = subprocess.run([sys.executable, script, '--print-token', 'uitest'], check=True,
                                        capture_output=True, text=True).stdout.strip()
        else:
            self.data_dir = tempfile.mkdtemp(prefix='chatmesh-ui-')
            port = free_port()
            self.env = dict(os.environ, CHATMESH_DATA_DIR=self.data_dir, CHATMESH_HTTP_PORT=str(port))
            # Answers that take ~2 s: a reload can land in the middle of one.
            self.env.setdefault('CHATMESH_BUILTIN_TOKENS_PER_SEC', '60')
            # A delete's undo window that a step can wait out.
            self.env.setdefault('CHATMESH_UNDO_SECONDS', str(UNDO_SECONDS))
            # The run starts more than the default 10 answers a minute; the
            # 429 notice is the mock's step (rate_limit_notice).
            self.env.setdefault('CHAT_REGENERATION_RATE_LIMIT', '60')
            self.env.setdefault('CHAT_ACTIONS_RATE_LIMIT', '300')
            for k in ('CHATMESH_HTTP_LISTEN', 'CHATMESH_WEB_DIR'):
                self.env.pop(k, None)
            print(f'starting a mesh on 127.0.0.1:{port} (data {self.data_dir})', flush=True)
            # stdout carries the sign-in token: keep it out of the test log.
            up = subprocess.run(['./chatmesh', 'up', '--detach'], cwd=ROOT, env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
            if up.returncode != 0:
                self.__exit__()
                sys.exit(f'./chatmesh up failed:\n{up.stderr}')
            self.url = f'http://127.0.0.1:{port}'
            self.token = subprocess.run(['./chatmesh', 'token', '--user', 'uitest'], cwd=ROOT, env=self.env, check=True,
                                        capture_output=True, text=True).stdout.strip()
        self.user = jwt_sub(self.token)
        if self.env or self.mock:
            self.undo_seconds = int(self.env['CHATMESH_UNDO_SECONDS']) if self.env else UNDO_SECONDS
        return self

    def mint(self, user, admin=False, ttl=None):
        """A token for user (an operator's with admin), or None when this
        mesh cannot make one: a given CHATMESH_TEST_URL, or admin from the mock."""
        extra = ['--ttl', str(ttl)] if ttl else []
        if self.mock and not admin:
            script = os.path.join(ROOT, 'tests', 'browser', 'mock_gateway.py')
            cmd = [sys.executable, script, '--print-token', user] + extra
        elif self.env:
            cmd = ['./chatmesh', 'token', '--user', user] + (['--admin'] if admin else []) + extra
        elif admin and not self.mock:
            return os.environ.get('CHATMESH_TEST_ADMIN_TOKEN')
        else:
            return None
        return subprocess.run(cmd, cwd=ROOT, env=self.env, check=True, capture_output=True, text=True).stdout.strip()

    def api(self, path, token, method='GET'):
        """method (GET) path as token's user: (status, the JSON body)."""
        req = urllib.request.Request(self.url + path, method=method, headers={'Authorization': f'Bearer {token}'})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b'null')

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        if self.env:
            subprocess.run(['./chatmesh', 'down'], cwd=ROOT, env=self.env, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def new_driver(width=1280, height=900):
    opts = Options()
    opts.binary_location = shutil.which('chromium') or '/usr/bin/chromium'
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                f'--window-size={width},{height}', '--lang=en-US'):
        opts.add_argument(arg)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    service = Service(shutil.which('chromedriver') or '/usr/bin/chromedriver')
    return webdriver.Chrome(service=service, options=opts)


class UiTest:
    def __init__(self, mesh, only=None):
        self.mesh = mesh
        self.only = only
        self.a = None
        self.b = None
        self.c = None  # the operator's browser (step_dashboard)
        self.session_id = None
        self.passed = 0
        self.failed = 0
        self.console = []

    # ---------- helpers ----------

    def wait(self, driver, cond, what, timeout=TIMEOUT):
        try:
            # A node gone between two calls of a poll (the page redrew it): poll again.
            return WebDriverWait(driver, timeout, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: cond(d))
        except TimeoutException:
            raise Failed(f'timed out after {timeout:.0f} s waiting for: {what}') from None

    def shot(self, driver, name):
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, name + '.png'))

    @staticmethod
    def js(driver, script, *args):
        return driver.execute_script(script, *args)

    def messages(self, driver):
        return self.js(driver, """
            return [...document.querySelectorAll('#messages .message')].map((m) => ({
              id: m.dataset.messageId, role: m.dataset.role,
              content: m.querySelector('.message-content').textContent,
              streaming: m.classList.contains('is-streaming'),
              edited: !m.querySelector('[data-marker="edited"]').hidden,
              regenerated: !m.querySelector('[data-marker="regenerated"]').hidden,
              up: (m.querySelector('.vote-count[data-kind="up"]') || {}).textContent,
              down: (m.querySelector('.vote-count[data-kind="down"]') || {}).textContent,
              pressed: [...m.querySelectorAll('button[aria-pressed="true"]')].map((b) => b.dataset.action),
              version: m.querySelector('.version-nav').hidden ? '' : m.querySelector('.version-label').textContent,
              stopped: !m.querySelector('[data-marker="stopped"]').hidden,
            }));""")

    def button(self, driver, message_id, action):
        return driver.find_element(By.CSS_SELECTOR, f'[data-message-id="{message_id}"] button[data-action="{action}"]')

    def settled(self, driver, count):
        """count messages, none streaming, every assistant answer non-empty."""
        def cond(d):
            msgs = self.messages(d)
            ok = len(msgs) == count and all(not m['streaming'] and m['content'].strip() for m in msgs)
            return msgs if ok else False
        return cond

    def probe(self, driver):
        return self.js(driver, 'return window.__probe;')

    def install_probe(self, driver):
        self.js(driver, PROBE_JS)

    def send_query(self, driver, text):
        box = driver.find_element(By.CSS_SELECTOR, '#composer textarea')
        box.clear()
        box.send_keys(text)
        driver.find_element(By.ID, 'send').click()

    def no_alert(self, driver):
        try:
            driver.switch_to.alert
        except NoAlertPresentException:
            return True
        return False

    def run_step(self, name, fn):
        started = time.monotonic()
        try:
            fn()
        except Skipped as why:
            print(f'skip {name}: {why}', flush=True)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then the next step runs
            self.failed += 1
            detail = str(exc) if isinstance(exc, Failed) else ''.join(traceback.format_exception_only(type(exc), exc)).strip()
            print(f'FAIL {name}: {detail}', flush=True)
            for tag, d in (('a', self.a), ('b', self.b), ('c', self.c)):
                if d:
                    try:
                        self.shot(d, f'FAIL-{name}-{tag}')
                    except Exception:  # noqa: BLE001 - a dead browser cannot take screenshots
                        pass
        else:
            self.passed += 1
            print(f'ok   {name} ({time.monotonic() - started:.1f} s)', flush=True)

    # ---------- steps ----------

    def step_sign_in(self):
        a = self.a
        a.get(self.mesh.url + '/')
        box = self.wait(a, lambda d: d.find_element(By.ID, 'token-input').is_displayed() and d.find_element(By.ID, 'token-input'),
                        'the sign-in form')
        self.shot(a, '01-sign-in')
        box.send_keys('not a token')
        a.find_element(By.ID, 'sign-in').click()
        self.wait(a, lambda d: any(n.is_displayed() for n in d.find_elements(By.CSS_SELECTOR, '.notice[data-kind="error"]')),
                  'a notice for a malformed token')
        box.clear()
        box.send_keys(self.mesh.token)
        a.find_element(By.ID, 'sign-in').click()
        self.wait(a, lambda d: d.find_element(By.ID, 'user-name').text == self.mesh.user, f'"{self.mesh.user}" shown as the user')
        check(a.find_element(By.ID, 'sign-out').is_displayed(), 'no sign-out button')
        check(self.js(a, "return localStorage.getItem('chatmesh.token')") == self.mesh.token, 'token not kept')
        self.install_probe(a)

    def check_header(self, driver, session_id, title):
        """The conversation's header names the session by its title, never by its id."""
        self.wait(driver, lambda d: d.find_element(By.ID, 'session-title').text == title,
                  f'the header titled {title!r}, not {driver.find_element(By.ID, "session-title").text!r}')
        head = driver.find_element(By.CSS_SELECTOR, '.chat-head')
        check(session_id not in head.text and session_id not in head.get_attribute('innerHTML'),
              f'the session id is in the header: {head.text!r}')

    def step_ask(self):
        a = self.a
        a.find_element(By.ID, 'new-session').click()
        self.js(a, 'window.__resetProbe()')
        self.send_query(a, 'What is **chatmesh**?')
        msgs = self.wait(a, self.settled(a, 2), 'the question and a complete answer')
        check([m['role'] for m in msgs] == ['user', 'assistant'], f'roles {[m["role"] for m in msgs]}')
        check(msgs[0]['content'].strip() == 'What is chatmesh?', f'user message shows {msgs[0]["content"]!r}')
        answer = msgs[1]['id']
        p = self.probe(a)
        check(p['partial'].get(answer), 'the answer never showed streamed partial content')
        check(p['bar'].get(answer), 'no progress bar while the answer streamed')
        check(not msgs[1]['regenerated'], 'a first answer is marked "regenerated"')
        self.session_id = self.wait(a, lambda d: self.js(d, "return new URLSearchParams(location.hash.slice(1)).get('session')"),
                                    'the session id in the address')
        check(self.session_id.startswith('s_'), f'session id {self.session_id!r}')
        self.wait(a, lambda d: d.find_elements(By.CSS_SELECTOR, f'#session-list [data-session-id="{self.session_id}"][aria-current="true"]'),
                  'the session listed and marked current')
        self.check_header(a, self.session_id, 'What is chatmesh?')
        self.shot(a, '02-answered')

    def step_second_window(self):
        check(self.session_id, 'no session from the previous step')
        self.b = new_driver()
        b = self.b
        b.get(f'{self.mesh.url}/#token={self.mesh.token}&session={self.session_id}')
        self.wait(b, lambda d: d.find_element(By.ID, 'user-name').text == self.mesh.user, 'window B signed in from the link')
        check('token=' not in b.current_url, 'the token stays in the address bar')
        msgs_a = self.messages(self.a)
        msgs_b = self.wait(b, self.settled(b, len(msgs_a)), 'window B shows the conversation')
        check([m['content'] for m in msgs_b] == [m['content'] for m in msgs_a], 'windows A and B differ')
        self.wait(b, lambda d: d.find_element(By.ID, 'live-status').get_attribute('data-state') == 'live', 'window B live')
        self.install_probe(b)
        self.shot(b, '03-second-window')

    def step_regenerate(self):
        a, b = self.a, self.b
        answer = self.messages(a)[1]['id']
        self.js(a, 'window.__resetProbe()')
        self.js(b, 'window.__resetProbe()')
        self.button(a, answer, 'regenerate').click()
        self.wait(a, lambda d: self.probe(d)['bar'].get(answer), 'the progress bar in window A')
        self.shot(a, '04-regenerating')
        msgs = self.wait(a, lambda d: (lambda m: m if m[1]['regenerated'] and not m[1]['streaming'] and m[1]['content'].strip() else False)(self.messages(d)),
                         'the regenerated answer marked "regenerated" in window A')
        pa = self.probe(a)
        check(pa['regenDisabled'].get(answer), 'Regenerate was never disabled while it ran')
        check(pa['partial'].get(answer), 'the regeneration never streamed partial content in window A')
        # thought_process_* events (CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS, on by default).
        panel = a.find_element(By.CSS_SELECTOR, f'[data-message-id="{answer}"] details.thought-process')
        check(panel.is_displayed(), 'no thought-process panel (is CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS off?)')
        panel.find_element(By.TAG_NAME, 'summary').click()
        steps = self.wait(a, lambda d: panel.find_elements(By.CSS_SELECTOR, '.thought-steps li'), 'thought-process steps')
        check(all(s.text.strip() for s in steps), 'an empty thought-process step')
        msgs_b = self.wait(b, lambda d: (lambda m: m if len(m) == 2 and m[1]['regenerated'] and not m[1]['streaming'] else False)(self.messages(d)),
                           'window B shows the regenerated answer')
        check(msgs_b[1]['content'] == msgs[1]['content'], 'window B shows other content than window A')
        check(self.probe(b)['bar'].get(answer), 'window B never showed the progress bar')
        self.shot(a, '05-regenerated')

    def step_votes(self):
        a, b = self.a, self.b
        answer = self.messages(a)[1]['id']
        counts = lambda d: (lambda m: (m[1]['up'], m[1]['down']))(self.messages(d))  # noqa: E731
        self.button(a, answer, 'upvote').click()
        self.wait(a, lambda d: counts(d) == ('1', '0'), 'upvote count 1 in window A')
        self.wait(b, lambda d: counts(d) == ('1', '0'), 'upvote count 1 in window B')
        self.shot(a, '06-upvoted')
        # Same user, second window: the vote replaces the first one.
        self.button(b, answer, 'downvote').click()
        self.wait(b, lambda d: counts(d) == ('0', '1'), 'votes 0/1 in window B after the downvote replaced the upvote')
        self.wait(a, lambda d: counts(d) == ('0', '1'), 'votes 0/1 in window A')
        label = self.button(a, answer, 'downvote').get_attribute('aria-label')
        check(label and '1' in label, f'downvote button label {label!r}')
        # The vote shows as pressed (the same in both windows); clicking the
        # pressed vote withdraws it (DELETE .../feedback, feedback_withdrawn).
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: self.messages(d)[1]['pressed'] == ['downvote'], f'the downvote pressed in window {name}')
        fill = self.js(a, "return getComputedStyle(document.querySelector(arguments[0])).fill",
                       f'[data-message-id="{answer}"] button[data-action="downvote"] .icon')
        check(fill not in ('none', ''), f'the pressed vote icon is not filled: {fill!r}')
        self.shot(a, '06b-downvote-pressed')
        self.button(a, answer, 'downvote').click()
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: counts(d) == ('0', '0') and self.messages(d)[1]['pressed'] == [],
                      f'the vote withdrawn (0/0, nothing pressed) in window {name}')
        check(self.button(a, answer, 'upvote').get_attribute('aria-pressed') == 'false', 'upvote aria-pressed is not "false"')

    def step_reload_keeps_thoughts(self):
        # The thought process is stored with the answer: a reload (no stream
        # history to replay) still shows the steps and the conclusion.
        a = self.a
        answer = self.messages(a)[1]['id']
        panel = a.find_element(By.CSS_SELECTOR, f'[data-message-id="{answer}"] details.thought-process')
        before = [li.text for li in panel.find_elements(By.CSS_SELECTOR, '.thought-steps li')]
        a.refresh()
        self.wait(a, self.settled(a, 2), 'the conversation after a reload')
        self.install_probe(a)
        self.check_header(a, self.session_id, 'What is chatmesh?')
        panel = self.wait(a, lambda d: (lambda p: p if p.is_displayed() else False)(
            d.find_element(By.CSS_SELECTOR, f'[data-message-id="{answer}"] details.thought-process')),
            'the thought-process panel after a reload')
        panel.find_element(By.TAG_NAME, 'summary').click()
        after = [li.text for li in panel.find_elements(By.CSS_SELECTOR, '.thought-steps li')]
        check(after and after == before, f'thought steps after a reload {after!r}, before {before!r}')
        conclusion = panel.find_element(By.CSS_SELECTOR, '.thought-conclusion')
        check(conclusion.is_displayed() and conclusion.text.strip(), 'no conclusion after a reload')
        check('thinking' not in panel.find_element(By.TAG_NAME, 'summary').text, 'a finished thought process shown as running')

    def step_reload_mid_generation(self):
        # A reload while the answer is still being generated: the steps it
        # already thought show at once (the store has them), not only the
        # ones streamed after the reload (the builtin generator thinks first,
        # so there are none). A regeneration may end before the reloaded page
        # shows it: then try again, up to three times.
        a = self.a
        answer = self.messages(a)[1]['id']
        steps = lambda d: self.js(d, 'return document.querySelectorAll(arguments[0]).length',  # noqa: E731
                                  f'[data-message-id="{answer}"] .thought-steps li')
        for _ in range(3):
            self.button(a, answer, 'regenerate').click()
            self.wait(a, lambda d: self.messages(d)[1]['streaming'] and steps(d) >= 1,
                      'a thought step while regenerating')
            before = steps(a)
            a.refresh()
            shown = self.wait(a, lambda d: (lambda m: m if len(m) == 2 else False)(self.messages(d)),
                              'the conversation after a reload')
            still, after = shown[1]['streaming'], steps(a)
            self.wait(a, self.settled(a, 2), 'the regeneration finished')
            self.install_probe(a)
            if still:
                break
        check(still, 'every regeneration ended before the reloaded page showed it')
        check(after >= before, f'{after} thought steps right after a reload mid-generation, {before} before it')

    def step_versions(self):
        # The answer was regenerated above: it has versions, "‹ N/N ›" in both
        # windows. Keyboard: Enter on "previous", then the arrow key back.
        a, b = self.a, self.b
        answer = self.messages(a)[1]['id']
        a.refresh()  # what the store has now, all versions counted
        self.wait(a, self.settled(a, 2), 'the conversation after a reload')
        self.install_probe(a)
        label = self.wait(a, lambda d: self.messages(d)[1]['version'], 'the version arrows on the regenerated answer')
        n, count = (int(x) for x in label.split('/'))
        check(n == count and count >= 2, f'the newest answer shows version {label}')
        self.wait(b, lambda d: self.messages(d)[1]['version'] == label, f'window B shows version {label}')
        prev = self.button(a, answer, 'version-prev')
        self.js(a, 'arguments[0].focus()', prev)
        prev.send_keys(Keys.ENTER)
        want = f'{count - 1}/{count}'
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: self.messages(d)[1]['version'] == want, f'version {want} in window {name}')
        self.wait(b, lambda d: self.messages(d)[1]['content'] == self.messages(a)[1]['content'], 'window B shows the same version text')
        check(self.js(a, 'return document.activeElement.dataset.action') == 'version-prev', 'the focus left the arrow')
        self.shot(a, '05b-version-previous')
        a.refresh()
        self.wait(a, lambda d: (lambda m: len(m) == 2 and m[1]['version'] == want)(self.messages(d)), f'version {want} after a reload')
        self.install_probe(a)
        prev = self.button(a, answer, 'version-prev')
        self.js(a, 'arguments[0].focus()', prev)
        prev.send_keys(Keys.ARROW_RIGHT)  # the arrow keys work anywhere in the control
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: self.messages(d)[1]['version'] == label, f'back to version {label} in window {name}')
        nxt = self.button(a, answer, 'version-next')
        check(nxt.get_attribute('aria-disabled') == 'true', '"next version" is not disabled on the newest version')
        a.set_window_size(390, 844)
        try:
            self.js(a, "arguments[0].scrollIntoView({block: 'center'})", nxt)
            self.shot(a, '05c-versions-phone')
        finally:
            a.set_window_size(1280, 900)

    def step_stop(self):
        # While an answer streams, Send is Stop (Esc too); the stopped answer
        # keeps what it showed, marked "stopped", and is not called a
        # regeneration. Its votes and delete are off while it runs. A fresh
        # session, so the conversation the other steps use stays as it is;
        # an answer can be over before Esc lands: then try again.
        a = self.a
        for _ in range(3):
            a.find_element(By.ID, 'new-session').click()
            self.send_query(a, 'Please answer at length, I will stop you')
            msgs = self.wait(a, lambda d: (lambda m: m if len(m) == 2 and m[1]['streaming'] and m[1]['content'].strip() else False)(self.messages(d)),
                             'the answer streaming')
            send = a.find_element(By.ID, 'send')
            if send.get_attribute('data-mode') != 'stop':
                continue  # over already
            answer = msgs[1]['id']
            disabled = {x: self.button(a, answer, x).get_attribute('disabled') is not None for x in ('upvote', 'downvote', 'delete')}
            self.shot(a, '15-streaming-stop')
            a.find_element(By.CSS_SELECTOR, '#composer textarea').send_keys(Keys.ESCAPE)
            msgs = self.wait(a, lambda d: (lambda m: m if not m[1]['streaming'] else False)(self.messages(d)), 'the answer to end')
            if msgs[1]['stopped']:
                break
        else:
            raise Failed('every answer ended before Esc stopped it')
        check(all(disabled.values()), f'votes/delete enabled on a running answer: {disabled}')
        check(msgs[1]['content'].strip(), 'the stopped answer lost its text')
        self.wait(a, lambda d: a.find_element(By.ID, 'send').get_attribute('data-mode') == 'send', 'Stop turns back into Send')
        notes = [n.text for n in a.find_elements(By.CSS_SELECTOR, '.notice')]
        check(any('answer was stopped' in t for t in notes) and not any('regeneration' in t for t in notes),
              f'the notices for a stopped first answer: {notes}')
        self.shot(a, '16-stopped')
        self.reload_keeps_stopped(a, answer, msgs[1]['content'], 'answer')
        # Again (a regeneration of it), with the Stop button this time. The
        # store kept the stopped text, so this is a regeneration: its text
        # becomes the answer's second version.
        self.js(a, "document.querySelectorAll('#notices .notice').forEach((n) => n.remove())")
        for _ in range(3):
            self.js(a, 'window.__resetProbe()')
            before = self.messages(a)[1]['content']
            self.button(a, answer, 'regenerate').click()
            # Its own text, not the stopped one shown until its first words.
            self.wait(a, lambda d: (lambda m: m[1]['streaming'] and m[1]['content'].strip() and m[1]['content'] != before)(self.messages(d)),
                      'the regeneration streaming')
            send = a.find_element(By.ID, 'send')
            if send.get_attribute('data-mode') != 'stop':
                continue
            check(send.get_attribute('aria-label') == 'Stop the answer', f'the Stop button is named {send.get_attribute("aria-label")!r}')
            send.click()
            msgs = self.wait(a, lambda d: (lambda m: m if not m[1]['streaming'] else False)(self.messages(d)), 'the regeneration to end')
            if msgs[1]['stopped']:
                break
        else:
            raise Failed('every regeneration ended before Stop stopped it')
        self.wait(a, lambda d: any('regeneration was stopped' in n.text for n in d.find_elements(By.CSS_SELECTOR, '.notice')),
                  'the notice "The regeneration was stopped." after Stop')
        check(msgs[1]['content'].strip(), 'the stopped regeneration lost its text')
        again = self.reload_keeps_stopped(a, answer, msgs[1]['content'], 'regeneration')
        check(self.mesh.mock or again['version'], 'the stopped regeneration is not a second version')  # the mock keeps no versions

    def reload_keeps_stopped(self, a, answer, seen, what):
        # The store kept what was seen: a reload shows the same text, still
        # marked "stopped". Returns the message as shown after the reload.
        a.refresh()
        self.wait(a, self.settled(a, 2), f'the conversation after a reload (stopped {what})')
        self.install_probe(a)
        again = self.messages(a)[1]
        check(again['id'] == answer and again['content'] == seen,
              f'after a reload the stopped {what} shows {again["content"][:80]!r}, not {seen[:80]!r}')
        check(again['stopped'], f'after a reload the stopped {what} is not marked "stopped"')
        return again

    def step_dark_screenshots(self):
        # The same page in the dark scheme, at desktop and phone width.
        a = self.a
        a.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': [{'name': 'prefers-color-scheme', 'value': 'dark'}]})
        try:
            check(self.js(a, "return matchMedia('(prefers-color-scheme: dark)').matches"), 'the dark scheme is not on')
            bg = self.js(a, 'return getComputedStyle(document.body).backgroundColor')
            check(bg != 'rgb(245, 246, 248)', f'the page kept the light background {bg}')
            self.shot(a, '19-dark-1280')
            a.set_window_size(390, 844)
            self.shot(a, '20-dark-390')
        finally:
            a.set_window_size(1280, 900)
            a.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': []})

    def step_dashboard(self):
        # The operators' page (web/admin.html) in a browser of its own: an
        # operator asks, votes the answer down and regenerates it; the
        # charts, the model table, the audit filters and the exports then
        # show what /api/admin/* counted. A non-operator gets the 403
        # sentence and no dashboard.
        admin = self.mesh.mint('uiadmin', admin=True)
        if not admin:
            raise Skipped('no operator token (the mock has no admin routes; a given URL needs CHATMESH_TEST_ADMIN_TOKEN)')
        self.c = c = new_driver()
        downloads = tempfile.mkdtemp(prefix='chatmesh-ui-dl-')
        try:
            self.dashboard_checks(c, admin, downloads)
        finally:
            shutil.rmtree(downloads, ignore_errors=True)

    def dashboard_checks(self, c, admin, downloads):
        c.get(f'{self.mesh.url}/#token={admin}')
        self.wait(c, lambda d: d.find_element(By.ID, 'user-name').text == 'uiadmin', 'the operator signed in')
        self.send_query(c, 'An operator asks')
        answer = self.wait(c, self.settled(c, 2), "the operator's exchange")[1]['id']
        self.button(c, answer, 'downvote').click()
        self.wait(c, lambda d: self.messages(d)[1]['down'] == '1', "the operator's down vote")
        self.button(c, answer, 'regenerate').click()
        self.wait(c, lambda d: (lambda m: m[1]['regenerated'] and not m[1]['streaming'] and m[1]['content'].strip())(self.messages(d)),
                  "the operator's answer regenerated")

        c.get(self.mesh.url + '/admin.html')
        charts = self.wait(c, lambda d: (lambda s: s if len(s) == 4 else False)(d.find_elements(By.CSS_SELECTOR, '#charts svg.chart')),
                           'the four charts')
        frm, to = (c.find_element(By.ID, x).get_attribute('value') for x in ('range-from', 'range-to'))
        status, analytics = self.mesh.api(f'/api/admin/analytics?from={frm}&to={to}', admin)
        check(status == 200, f'analytics as an operator: {status} {analytics}')
        mine = next((u for u in analytics['users'] if u['user'] == 'uiadmin'), None)
        counted = mine and {k: mine[k] for k in ('turns', 'answers', 'regenerations', 'downvotes')}
        check(counted == {'turns': 1, 'answers': 2, 'regenerations': 1, 'downvotes': 1}, f"the operator's actions counted as {counted}")
        # Each chart: a bar per day with the day's number, summed over the models.
        for svg, counter in zip(charts, ('turns', 'answers', 'regenerations', 'downvotes')):
            want = [f"{day['date']}: {sum(row[counter] for row in day['models'])}" for day in analytics['days']]
            got = self.js(c, "return [...arguments[0].querySelectorAll('rect.bar title')].map((t) => t.textContent)", svg)
            check(got == want and want, f'the {counter} chart shows {got}, the analytics {want}')
            top = max(int(w.rsplit(' ', 1)[1]) for w in want)
            check(f'(max {max(top, 1)})' in svg.find_element(By.CSS_SELECTOR, '.chart-title').text, f'the {counter} chart title')
            heights = [float(r.get_attribute('height')) for r in svg.find_elements(By.CSS_SELECTOR, 'rect.bar')]
            check(max(heights) > 0 or top == 0, f'the {counter} chart draws no bar for {top}')
        table = lambda d, tid: self.js(d, "return [...document.querySelectorAll(arguments[0])].map((r) => [...r.cells].map((x) => x.textContent))",  # noqa: E731
                                       f'#{tid} tbody tr')
        models = [[m['model'], str(m['answers'])] for m in analytics['models']]
        check([r[:2] for r in table(c, 'model-table')] == models, f"the model table {table(c, 'model-table')}, the analytics {models}")

        # The audit filter narrows the list to the operator's entries, then to its vote.
        every = self.wait(c, lambda d: table(d, 'audit-table'), 'the audit log')
        check({r[1] for r in every} - {'uiadmin'}, 'the unfiltered audit log shows only the operator')
        form = c.find_element(By.ID, 'audit-form')
        audit_rows = lambda entries: [[e['created_at'], e['user_id'], e['action_type'], e['session_id'] or '', e['message_id'] or '']  # noqa: E731
                                      for e in entries]
        for field, value, query in (('user', 'uiadmin', 'user=uiadmin'), ('action', 'feedback', 'user=uiadmin&action=feedback')):
            form.find_element(By.NAME, field).send_keys(value)
            form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
            want = audit_rows(self.mesh.api(f'/api/admin/audit?{query}', admin)[1]['entries'])
            check(0 < len(want) < len(every), f'{query}: {len(want)} entries of {len(every)}')
            self.wait(c, lambda d: table(d, 'audit-table') == want, f'the audit log narrowed to {query} ({len(want)} entries)')
        check(table(c, 'audit-table')[0][1:3] == ['uiadmin', 'feedback'], 'the filtered audit row')

        # The exports: the feedback of the range, as the audit has it.
        votes = self.mesh.api(f'/api/admin/audit?action=feedback&from={frm}&to={to}T23:59:59.999Z&limit=1000', admin)[1]['entries']
        columns = ['created_at', 'user_id', 'session_id', 'message_id', 'feedback_type', 'reason']
        want = [dict(zip(columns, (e['created_at'], e['user_id'], e['session_id'], e['message_id'],
                                   e['details'].get('feedback_type'), e['details'].get('reason')))) for e in votes]
        check(any(w['user_id'] == 'uiadmin' and w['feedback_type'] == 'downvote' for w in want), "the operator's vote is not in the audit")
        self.wait(c, lambda d: len(table(d, 'feedback-table')) == len(want), f'the feedback table with {len(want)} votes')
        c.execute_cdp_cmd('Browser.setDownloadBehavior', {'behavior': 'allow', 'downloadPath': downloads})

        def download(button, name):
            c.find_element(By.ID, button).click()
            path = os.path.join(downloads, name)
            self.wait(c, lambda d: os.path.exists(path), f'{name} downloaded')
            with open(path, encoding='utf-8', newline='') as f:
                return f.read()
        text = download('export-csv', 'feedback.csv')
        rows = list(csv.reader(io.StringIO(text)))
        check(rows[0] == columns, f'the CSV header {rows[0]}')
        check(rows[1:] == [['' if w[k] is None else str(w[k]) for k in columns] for w in want], f'the CSV rows {rows[1:]}')
        check(text.endswith('\r\n'), 'the CSV lines do not end in CRLF')
        lines = download('export-jsonl', 'feedback.jsonl').splitlines()
        check([json.loads(line) for line in lines] == want, f'the JSONL rows {lines}')

        # Light and dark, desktop and phone.
        self.js(c, 'window.scrollTo(0, 0)')
        self.shot(c, '21-dashboard-1280')
        try:
            c.set_window_size(390, 844)
            overflow = self.js(c, 'return document.documentElement.scrollWidth - window.innerWidth')
            check(overflow <= 0, f'the dashboard is {overflow}px wider than a phone')
            self.shot(c, '22-dashboard-390')
            c.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': [{'name': 'prefers-color-scheme', 'value': 'dark'}]})
            self.shot(c, '24-dashboard-dark-390')
            c.set_window_size(1280, 900)
            check(self.js(c, 'return getComputedStyle(document.body).backgroundColor') != 'rgb(245, 246, 248)',
                  'the dashboard kept the light background in the dark scheme')
            self.shot(c, '23-dashboard-dark-1280')
        finally:
            c.set_window_size(1280, 900)
            c.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': []})

        # A non-operator: the server's 403 as a sentence, and nothing else.
        check(self.mesh.api('/api/admin/analytics', self.mesh.token)[0] == 403, 'the analytics answer a non-operator')
        self.js(c, "localStorage.setItem('chatmesh.token', arguments[0])", self.mesh.token)
        c.get(self.mesh.url + '/admin.html')
        self.wait(c, lambda d: 'not an operator' in d.find_element(By.ID, 'dash-status').text, 'the 403 sentence for a non-operator')
        check(not c.find_element(By.ID, 'dash').is_displayed(), 'a non-operator sees the dashboard')
        check(not c.find_elements(By.CSS_SELECTOR, '#charts svg, #audit-table tbody tr'), 'a non-operator sees charts or audit rows')
        self.shot(c, '25-dashboard-not-operator')

    def step_reconnect_replay(self):
        # Mock only: the mock can cut the streams on demand. Window B must come
        # back by itself and get what it missed through Last-Event-ID.
        a, b = self.a, self.b
        answer = self.messages(a)[1]['id']
        req = urllib.request.Request(self.mesh.url + '/__mock/drop', data=b'{}', method='POST',
                                     headers={'Content-Type': 'application/json'})
        urllib.request.urlopen(req, timeout=10).read()
        self.wait(b, lambda d: d.find_element(By.ID, 'live-status').get_attribute('data-state') != 'live', 'window B disconnected')
        self.button(a, answer, 'upvote').click()
        self.wait(a, lambda d: self.messages(d)[1]['up'] == '1', 'the upvote in window A')
        self.wait(b, lambda d: d.find_element(By.ID, 'live-status').get_attribute('data-state') == 'live', 'window B live again')
        self.wait(b, lambda d: (self.messages(d)[1]['up'], self.messages(d)[1]['down']) == ('1', '0'), 'window B caught up on the vote')
        stats = json.loads(urllib.request.urlopen(self.mesh.url + '/__mock/stats', timeout=10).read())
        check(stats['replayed'] >= 1, 'nothing was replayed after the reconnect')

    def step_edit(self):
        a, b = self.a, self.b
        question, answer = (m['id'] for m in self.messages(a)[:2])
        original, old_text = self.messages(a)[0]['content'].strip(), self.messages(a)[1]['content']
        self.js(a, 'window.__resetProbe()')
        self.js(b, 'window.__resetProbe()')
        self.button(a, question, 'edit').click()
        editor = self.wait(a, lambda d: d.find_element(By.CSS_SELECTOR, f'[data-message-id="{question}"] .editor textarea'), 'the editor')
        box = a.find_element(By.CSS_SELECTOR, f'[data-message-id="{question}"] .editor-regenerate')
        check(box.is_selected(), '"Regenerate the answer" is not checked by default')
        self.shot(a, '07-editing')
        editor.clear()
        editor.send_keys('What is _chatmesh_, in one line?')
        a.find_element(By.CSS_SELECTOR, f'[data-message-id="{question}"] button[data-action="save-edit"]').click()
        want = 'What is chatmesh, in one line?'
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: (lambda m: m[0]['content'].strip() == want and m[0]['edited'])(self.messages(d)),
                      f'the edited question marked "edited" in window {name}')
        if self.mesh.mock:
            # The mock regenerates the answer in place (it has no branches).
            for d, name in ((a, 'A'), (b, 'B')):
                self.wait(d, lambda d: self.probe(d)['bar'].get(answer), f'the answer regenerating after the edit in window {name}')
                self.wait(d, self.settled(d, 2), f'the answer regenerated after the edit in window {name}')
            self.shot(a, '08-edited')
            return
        # The edited question is version 2 of 2 with a new branch: a new
        # answer below it, the old one kept in version 1's branch.
        for d, name in ((a, 'A'), (b, 'B')):
            msgs = self.wait(d, lambda d: (lambda m: m if len(m) == 2 and m[1]['id'] != answer and m[0]['version'] == '2/2'
                                           and not m[1]['streaming'] and m[1]['content'].strip() else False)(self.messages(d)),
                             f'the new branch answered after the edit in window {name}')
        new_answer = msgs[1]['id']
        self.shot(a, '08-edited')
        # The question's arrows: version 1 brings the old answer back, in
        # both windows; then back to the edit.
        self.button(a, question, 'version-prev').click()
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: (lambda m: len(m) == 2 and m[0]['version'] == '1/2' and m[0]['content'].strip() == original
                                    and m[1]['id'] == answer and m[1]['content'] == old_text)(self.messages(d)),
                      f'the old branch back with its answer in window {name}')
        self.shot(b, '08b-question-version-1-window-b')
        a.refresh()
        self.wait(a, lambda d: (lambda m: len(m) == 2 and m[0]['version'] == '1/2' and m[1]['id'] == answer)(self.messages(d)),
                  'the old branch after a reload')
        self.install_probe(a)
        nxt = self.button(a, question, 'version-next')
        self.js(a, 'arguments[0].focus()', nxt)
        nxt.send_keys(Keys.ENTER)
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: (lambda m: len(m) == 2 and m[0]['version'] == '2/2' and m[1]['id'] == new_answer)(self.messages(d)),
                      f'the edited branch again in window {name}')

    def step_edit_history(self):
        # The "edited" tag opens the question's edit history: the text
        # before and after the edit, as the store has it; Esc closes it and
        # the focus goes back to the tag.
        a = self.a
        question = self.messages(a)[0]['id']
        tag = a.find_element(By.CSS_SELECTOR, f'[data-message-id="{question}"] [data-marker="edited"]')
        check(tag.tag_name == 'button' and tag.is_displayed(), 'the "edited" tag is not a button')
        tag.click()
        dialog = self.wait(a, lambda d: (lambda x: x.is_displayed() and x)(d.find_element(By.ID, 'history-dialog')),
                           'the edit history dialog')
        status, reply = self.mesh.api(f'/api/messages/{question}/history', self.mesh.token)
        check(status == 200, f'GET .../history: {status} {reply}')
        want = [[h['original_content'], h['edited_content']] for h in reply['history']]
        check(want == [['What is **chatmesh**?', 'What is _chatmesh_, in one line?']], f'the stored history {want}')
        shown = self.wait(a, lambda d: self.js(d, """return [...document.querySelectorAll('#history-list .history-entry')].map((e) =>
            ['before', 'after'].map((side) => e.querySelector(`[data-side="${side}"]`).textContent))"""), 'the history entries')
        check(shown == want, f'the dialog shows {shown}, the store has {want}')
        self.shot(a, '08b-edit-history')
        a.set_window_size(390, 844)
        try:
            width = self.js(a, 'return arguments[0].getBoundingClientRect().width', dialog)
            check(width <= 390, f'the history dialog is {width}px wide on a phone')
            self.shot(a, '08c-edit-history-phone')
        finally:
            a.set_window_size(1280, 900)
        a.switch_to.active_element.send_keys(Keys.ESCAPE)
        self.wait(a, lambda d: not dialog.is_displayed(), 'the history dialog to close on Esc')
        check(self.js(a, 'return document.activeElement === arguments[0]', tag), 'the focus did not go back to the "edited" tag')

    def step_delete(self):
        a, b = self.a, self.b
        self.send_query(a, 'A second question, to be deleted')
        self.wait(a, self.settled(a, 4), 'a second complete exchange in window A')
        self.wait(b, self.settled(b, 4), 'the second exchange in window B (message_added)')
        first_user, _, second_user, _ = (m['id'] for m in self.messages(a))
        # Cancel first: nothing goes.
        self.button(a, first_user, 'delete').click()
        dialog = self.wait(a, lambda d: d.find_element(By.ID, 'confirm-dialog').is_displayed() and d.find_element(By.ID, 'confirm-dialog'),
                           'the confirmation dialog')
        text = a.find_element(By.ID, 'confirm-text').text
        check('3 later messages' in text, f'the confirmation does not say the later messages go too: {text!r}')
        self.shot(a, '09-confirm-delete')
        a.find_element(By.ID, 'confirm-cancel').click()
        self.wait(a, lambda d: not dialog.is_displayed(), 'the dialog to close')
        check(len(self.messages(a)) == 4, 'cancel deleted something')
        # Now delete the second question: its answer goes with it.
        self.button(a, second_user, 'delete').click()
        self.wait(a, lambda d: dialog.is_displayed(), 'the confirmation dialog')
        check('1 later message' in a.find_element(By.ID, 'confirm-text').text, 'the confirmation does not count 1 later message')
        a.find_element(By.ID, 'confirm-ok').click()
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: len(self.messages(d)) == 2, f'two messages left in window {name}')
        check(second_user not in [m['id'] for m in self.messages(b)], 'window B still shows the deleted message')
        self.shot(b, '10-deleted-window-b')

    # ---------- undo, the sidebar's tools, export, continue ----------

    def undo_toast(self, driver):
        """The newest undo toast shown, or False."""
        # In one script: a toast can go between a lookup and a question about it.
        return self.js(driver, """return [...document.querySelectorAll('.notice[data-kind="undo"]')]
            .filter((n) => n.getClientRects().length).pop() || false""")

    def toast_seconds(self, toast):
        found = re.search(r'\((\d+) s\)', toast.text)
        return int(found.group(1)) if found else None

    def confirm(self, driver, opener, choice):
        """Opens the confirm dialog with opener, answers with the button choice."""
        opener.click()
        dialog = self.wait(driver, lambda d: (lambda x: x.is_displayed() and x)(d.find_element(By.ID, 'confirm-dialog')),
                           'the confirmation dialog')
        driver.find_element(By.ID, choice).click()
        self.wait(driver, lambda d: not dialog.is_displayed(), 'the dialog to close')

    def ids(self, driver):
        return [m['id'] for m in self.messages(driver)]

    def both_show(self, ids, what):
        for d, name in ((self.a, 'A'), (self.b, 'B')):
            self.wait(d, lambda d: self.ids(d) == ids and all(not m['streaming'] for m in self.messages(d)),
                      f'{what} in window {name} ({len(ids)} messages)')

    def shots_light_dark(self, driver, name):
        """name-1280, -390, -dark-390 and -dark-1280 of what the page shows now."""
        self.shot(driver, f'{name}-1280')
        try:
            driver.set_window_size(390, 844)
            self.shot(driver, f'{name}-390')
            driver.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': [{'name': 'prefers-color-scheme', 'value': 'dark'}]})
            self.shot(driver, f'{name}-dark-390')
            driver.set_window_size(1280, 900)
            self.shot(driver, f'{name}-dark-1280')
        finally:
            driver.set_window_size(1280, 900)
            driver.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': []})

    def step_undo_delete(self):
        # Delete a message with either scope the dialog offers, then Undo:
        # both windows show the messages again, and so does a reload. The
        # toast's Undo has the focus (Enter undoes) and counts down; after
        # the window (CHATMESH_UNDO_SECONDS) it goes and the delete stays.
        # A delete right after an undo deletes again: a new Idempotency-Key,
        # not a replay of the first delete.
        a, b = self.a, self.b
        self.send_query(a, 'A second question, to be deleted and brought back')
        self.wait(a, self.settled(a, 4), 'a second exchange in window A')
        self.wait(b, self.settled(b, 4), 'the second exchange in window B')
        ids = self.ids(a)
        q2 = ids[2]
        # Only this: the answer after it stays.
        self.confirm(a, self.button(a, q2, 'delete'), 'confirm-only')
        self.both_show([ids[0], ids[1], ids[3]], 'only the question deleted')
        toast = self.wait(a, self.undo_toast, 'the undo toast')
        secs = self.toast_seconds(toast)
        check('deleted' in toast.text and 'Undo' in toast.text and secs, f'the undo toast says {toast.text!r}')
        check(secs <= (self.mesh.undo_seconds or 86400), f'the toast offers {secs} s')
        self.wait(a, lambda d: (self.toast_seconds(toast) or secs) < secs, 'the undo toast counting down', timeout=3)
        check(self.js(a, 'return document.activeElement.dataset.action') == 'undo', 'the Undo button does not have the focus')
        a.switch_to.active_element.send_keys(Keys.ENTER)
        self.both_show(ids, 'the question back after Undo (Enter)')
        self.wait(a, lambda d: not self.undo_toast(d), 'the toast gone after Undo')
        a.refresh()
        self.wait(a, lambda d: self.ids(d) == ids, 'the restored question after a reload')
        self.install_probe(a)
        # This and later: the answer goes with it; Undo with the mouse.
        self.confirm(a, self.button(a, q2, 'delete'), 'confirm-ok')
        self.both_show(ids[:2], 'the question and its answer deleted')
        toast = self.wait(a, self.undo_toast, 'the undo toast')
        check('2 messages deleted' in toast.text, f'the undo toast says {toast.text!r}')
        self.shots_light_dark(a, '09b-undo-toast')
        toast.find_element(By.CSS_SELECTOR, 'button[data-action="undo"]').click()
        self.both_show(ids, 'both messages back after Undo')
        b.refresh()
        self.wait(b, lambda d: self.ids(d) == ids, 'both messages in window B after a reload')
        self.install_probe(b)
        self.wait(b, lambda d: d.find_element(By.ID, 'live-status').get_attribute('data-state') == 'live', 'window B live again')
        # The same delete again, within seconds of the first: it deletes.
        self.confirm(a, self.button(a, q2, 'delete'), 'confirm-ok')
        self.both_show(ids[:2], 'the second delete of the same messages')
        self.wait(a, lambda d: not self.undo_toast(d), 'the undo toast to go when the window is over',
                  timeout=(self.mesh.undo_seconds or 30) + 5)
        status, body = self.mesh.api(f'/api/messages/{q2}/restore', self.mesh.token, method='POST')
        check(status in (404, 410), f'a restore after the window: {status} {body}')
        a.refresh()
        self.wait(a, lambda d: self.ids(d) == ids[:2], 'the delete kept after the window and a reload')
        self.install_probe(a)

    def session_title_in_list(self, driver, sid):
        return self.js(driver, "const t = document.querySelector(arguments[0]); return t && t.textContent",
                       f'#session-list [data-session-id="{sid}"] .session-title')

    def session_tool(self, driver, sid, action):
        return driver.find_element(By.CSS_SELECTOR, f'#session-list [data-session-row="{sid}"] button[data-action="{action}"]')

    def step_session_rename(self):
        # Inline rename in the sidebar: Esc cancels, a blank title is refused
        # with the server's sentence under the field, Enter saves; both
        # windows' sidebars and headers show the new title.
        a, b = self.a, self.b
        sid = self.session_id
        old = self.session_title_in_list(a, sid)
        check(old, 'the session is not in the sidebar')
        field = lambda d: (lambda f: f and f[0])(d.find_elements(By.CSS_SELECTOR, '#session-list .session-rename-input'))  # noqa: E731
        self.session_tool(a, sid, 'rename-session').click()
        box = self.wait(a, field, 'the rename field')
        check(self.js(a, 'return document.activeElement === arguments[0]', box), 'the rename field does not have the focus')
        box.send_keys(Keys.CONTROL + 'a' + Keys.NULL, 'Not this title', Keys.ESCAPE)
        self.wait(a, lambda d: not field(d) and self.session_title_in_list(d, sid) == old, 'Esc to cancel the rename')
        check(self.js(a, 'return document.activeElement.dataset.action') == 'rename-session', 'the focus did not go back to Rename')
        a.switch_to.active_element.send_keys(Keys.ENTER)  # the Rename button, by keyboard
        box = self.wait(a, field, 'the rename field again')
        box.send_keys(Keys.CONTROL + 'a' + Keys.NULL, Keys.DELETE, '   ', Keys.ENTER)
        self.wait(a, lambda d: (lambda e: e and e[0].is_displayed() and e[0].text.strip())(
            d.find_elements(By.CSS_SELECTOR, '#session-list .session-rename-error')), 'the error for a blank title')
        check(field(a) and field(a).get_attribute('aria-invalid') == 'true', 'the field closed or is not marked invalid after the error')
        self.shot(a, '28-rename-error')
        new = 'Renamed: notes on chatmesh'
        box.send_keys(Keys.CONTROL + 'a' + Keys.NULL, new, Keys.ENTER)
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: self.session_title_in_list(d, sid) == new, f'the new title in window {name}\'s sidebar')
            self.wait(d, lambda d: d.find_element(By.ID, 'session-title').text == new, f'the new title in window {name}\'s header')
        check(not a.find_elements(By.CSS_SELECTOR, '#session-list .session-rename-error'), 'the error stays after the rename')
        status, body = self.mesh.api(f'/api/sessions/{sid}', self.mesh.token)
        check(status == 200 and body['session']['title'] == new, f'the stored title {body}')
        self.shots_light_dark(a, '28b-session-renamed')

    def step_session_delete_undo(self):
        # Delete the open session from the sidebar: this window leaves it
        # for a new one, the other window shows it deleted; Undo brings it
        # back in both (this one opens it again), and a reload keeps it.
        a, b = self.a, self.b
        sid = self.session_id
        shown = [m['content'] for m in self.messages(a)]
        title = a.find_element(By.ID, 'session-title').text
        self.confirm(a, self.session_tool(a, sid, 'delete-session'), 'confirm-ok')
        self.wait(a, lambda d: not self.session_title_in_list(d, sid) and not self.messages(d)
                  and d.find_element(By.ID, 'session-title').text == 'New session', 'window A left the deleted session')
        self.wait(b, lambda d: not self.messages(d) and d.find_element(By.ID, 'session-title').text == 'Deleted session',
                  'window B shows the session deleted')
        self.wait(b, lambda d: not self.session_title_in_list(d, sid), 'the session gone from window B\'s sidebar')
        toast = self.wait(a, self.undo_toast, 'the undo toast for the session')
        check('Session' in toast.text and 'deleted' in toast.text, f'the undo toast says {toast.text!r}')
        self.shot(a, '29-session-deleted')
        self.shot(b, '29b-session-deleted-window-b')
        toast.find_element(By.CSS_SELECTOR, 'button[data-action="undo"]').click()
        for d, name in ((a, 'A'), (b, 'B')):
            self.wait(d, lambda d: [m['content'] for m in self.messages(d)] == shown, f'the session back in window {name}')
            self.wait(d, lambda d: d.find_element(By.ID, 'session-title').text == title, f'its title back in window {name}')
            self.wait(d, lambda d: self.session_title_in_list(d, sid) == title, f'the session back in window {name}\'s sidebar')
        check(self.js(a, "return new URLSearchParams(location.hash.slice(1)).get('session')") == sid, 'window A did not open it again')
        a.refresh()
        self.wait(a, lambda d: [m['content'] for m in self.messages(d)] == shown, 'the restored session after a reload')
        self.install_probe(a)

    def step_session_paging(self):
        # More sessions than a page (100): the sidebar offers "More
        # sessions" and walks the cursor until it holds every session. Only
        # the mock can make 120 sessions at once.
        a = self.a
        req = urllib.request.Request(f'{self.mesh.url}/__mock/sessions?user={self.mesh.user}&count=120', method='POST')
        urllib.request.urlopen(req, timeout=TIMEOUT).read()
        total, cursor = 0, ''
        while True:
            status, page = self.mesh.api(f'/api/sessions?limit=1000{cursor}', self.mesh.token)
            check(status == 200, f'GET /api/sessions: {status}')
            total += len(page['sessions'])
            if not page['next_cursor']:
                break
            cursor = f'&cursor={page["next_cursor"]}'
        check(total > 100, f'only {total} sessions')
        rows = lambda d: self.js(d, "return document.querySelectorAll('#session-list [data-session-id]').length")  # noqa: E731
        a.refresh()
        self.wait(a, lambda d: rows(d) == 100, 'the first page of 100 sessions')
        self.install_probe(a)
        more = a.find_element(By.ID, 'sessions-more')
        check(more.is_displayed(), 'no "More sessions" button with another page')
        self.js(a, "arguments[0].scrollIntoView({block: 'center'})", more)
        more.click()
        self.wait(a, lambda d: rows(d) == total, f'all {total} sessions listed after "More sessions"')
        check(not more.is_displayed(), '"More sessions" offered on the last page')
        last = self.js(a, "const t = [...document.querySelectorAll('#session-list .session-title')].pop(); return t && t.textContent")
        check(last == 'Seeded session 0', f'the oldest session is not last: {last!r}')

    def step_export(self):
        # The export buttons of the open session: the JSON file is the
        # store's whole tree (every version of every turn, those of the
        # branch the edit left too), the Markdown file the active path.
        a = self.a
        sid = self.session_id
        downloads = tempfile.mkdtemp(prefix='chatmesh-ui-export-')
        try:
            a.execute_cdp_cmd('Browser.setDownloadBehavior', {'behavior': 'allow', 'downloadPath': downloads})

            def download(button, name):
                a.find_element(By.ID, button).click()
                path = os.path.join(downloads, name)
                self.wait(a, lambda d: os.path.exists(path), f'{name} downloaded')
                with open(path, encoding='utf-8') as f:
                    return f.read()
            tree = json.loads(download('export-json', f'chatmesh-{sid}.json'))
            status, stored = self.mesh.api(f'/api/sessions/{sid}/export?format=json', self.mesh.token)
            check(status == 200, f'GET .../export: {status} {stored}')
            check(tree['session_id'] == sid and tree['format'] == 'json' and tree['session'] == stored['session'],
                  'the JSON file is not the store\'s tree')
            turns = tree['session']['messages']
            check(all(len(t['versions']) == t['version_count'] for t in turns), 'a turn of the JSON file lacks versions')
            # Every version of every turn, with its own text (regenerate and
            # edit made some; the mock keeps none).
            several = [t for t in turns if len({v['content'] for v in t['versions']}) >= 2]
            check(self.mesh.mock or several, 'no turn of the JSON file has its versions')
            shown = self.ids(a)
            check([t['message_id'] for t in turns if t['on_active_path']] == shown, 'the JSON file\'s active path is not what the page shows')
            md = download('export-markdown', f'chatmesh-{sid}.md')
            status, stored = self.mesh.api(f'/api/sessions/{sid}/export?format=markdown', self.mesh.token)
            check(status == 200 and md == stored['content'], 'the Markdown file is not the store\'s')
            roles = [m['role'] for m in self.messages(a)]
            check(md.count('## User') == roles.count('user') and md.count('## Assistant') == roles.count('assistant'),
                  f'the Markdown file has other turns than the page ({roles})')
            for t in turns:
                if t['on_active_path'] and t['version_count'] > 1:
                    check(f'(version {t["version_index"]} of {t["version_count"]})' in md,
                          'the Markdown file does not say which version a turn shows')
        finally:
            shutil.rmtree(downloads, ignore_errors=True)
        check(a.find_element(By.ID, 'export-tools').is_displayed(), 'the export buttons are hidden')
        a.find_element(By.ID, 'new-session').click()
        self.wait(a, lambda d: not d.find_element(By.ID, 'export-tools').is_displayed(), 'no export buttons on a new session')
        a.get(f'{self.mesh.url}/#session={sid}')
        self.wait(a, lambda d: self.ids(d) == shown, 'the session open again')
        self.install_probe(a)

    def step_continue(self):
        # The answer stop_answer stopped: Continue grows the same message
        # (same id and version) from its text, which never shrinks while it
        # streams; the answer is then whole (not "stopped"), also after a
        # reload, and Continue is gone.
        a = self.a
        msgs = self.messages(a)
        check(len(msgs) == 2 and msgs[1]['stopped'], 'no stopped answer from stop_answer')
        answer, before, version = msgs[1]['id'], msgs[1]['content'].strip(), msgs[1]['version']
        cont = self.button(a, answer, 'continue')
        check(cont.is_displayed(), 'no Continue button on the stopped answer')
        self.js(a, "arguments[0].scrollIntoView({block: 'center'})", cont)
        self.shots_light_dark(a, '16b-continue-offered')
        self.js(a, 'window.__resetProbe()')
        cont.click()
        done = self.wait(a, lambda d: (lambda m: m if len(m) == 2 and not m[1]['streaming'] and not m[1]['stopped']
                                       and len(m[1]['content'].strip()) > len(before) else False)(self.messages(d)),
                         'the continued answer complete')
        after = done[1]
        check(after['id'] == answer and after['version'] == version, f'Continue made another message or version: {after["id"]} {after["version"]!r}')
        check(after['content'].strip().startswith(before[:40]), f'the continued answer does not start with the stopped text: {after["content"][:80]!r}')
        grew = self.probe(a)['partial'].get(answer) or []
        check(grew and min(grew) >= 0.8 * len(before), f'the text shrank while it continued: {grew[:5]} from {len(before)}')
        check(not self.button(a, answer, 'continue').is_displayed(), 'Continue is still offered on a whole answer')
        a.refresh()
        again = self.wait(a, self.settled(a, 2), 'the continued answer after a reload')[1]
        self.install_probe(a)
        check(again['content'] == after['content'] and not again['stopped'], 'the reload shows another text or "stopped"')
        self.shot(a, '16c-continued')

    def step_xss(self):
        a, b = self.a, self.b
        self.send_query(a, XSS)
        self.wait(a, self.settled(a, 4), 'the exchange with markup in window A')
        self.wait(b, self.settled(b, 4), 'the exchange with markup in window B')
        for d, name in ((a, 'A'), (b, 'B')):
            msgs = self.messages(d)
            check(msgs[2]['content'].strip() == XSS, f'window {name} does not show the markup as text: {msgs[2]["content"]!r}')
            check(self.no_alert(d), f'an alert opened in window {name}')
            check(self.js(d, 'return window.__alerts') == 0, f'alert() was called in window {name}')
            bad = self.js(d, 'return document.querySelectorAll(arguments[0]).length',
                          '#messages script, #messages img, #messages iframe, #messages [onerror], '
                          '#messages [onclick], #messages a[href^="javascript"]')
            check(bad == 0, f'window {name} created {bad} script/img/handler element(s) from a message')
            # The module and the libraries (marked, DOMPurify; highlight.js once code came).
            srcs = self.js(d, "return [...document.scripts].map((s) => s.getAttribute('src'))")
            check(set(srcs) <= {'js/app.js', 'lib/marked.js', 'lib/purify.js', 'lib/highlight.js'} and len(srcs) == len(set(srcs)),
                  f'window {name} has extra <script> elements: {srcs}')
        self.shot(a, '11-markup-as-text')

    def step_markdown(self):
        cases = [
            '# Title\n\nSome **bold**, *italic*, _also italic_ and `code <b>`.',
            '```js\nif (a < b) { alert("x") }\n```',
            '- one\n- two\n  - nested\n\n1. first\n2. second',
            '[ok](https://example.org/a?b=1&c=2) [bad](javascript:alert(1)) [bad2](data:text/html,x)',
            '[q](https://e.org/"onmouseover="alert(1)") <a href="https://x">raw</a>',
            'snake_case_name and snake_case_too',
            '<img src=x onerror=alert(1)> &amp; &lt;',
            '| a | b |\n|---|:-:|\n| 1 | <b>2</b> |',
            '<div>\n<script>alert(1)</script>\n</div>',
        ]
        out = self.a.execute_async_script(MARKDOWN_JS, cases)
        check(isinstance(out, list), f'markdown.js failed to load: {out}')
        check(self.js(self.a, 'return [typeof marked, typeof DOMPurify].join()') == 'object,function',
              'the libraries (/lib/marked.js, purify.js) are not loaded')
        allowed = {'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'br', 'strong', 'em', 'del', 'code', 'pre', 'ul', 'ol', 'li',
                   'a', 'blockquote', 'hr', 'table', 'thead', 'tbody', 'tr', 'th', 'td'}
        for case, r in zip(cases, out):
            for e in r['elements']:
                check(e['tag'] in allowed, f'{case!r} produced <{e["tag"]}>')
                for name, value in e['attrs']:
                    check(name in ('href', 'target', 'rel', 'class', 'start', 'align'), f'{case!r} produced attribute {name}')
                    if name == 'href':
                        check(value.startswith(('https://', 'http://')), f'{case!r} produced href {value!r}')
                if e['tag'] == 'a':
                    check(['rel', 'noopener noreferrer'] in e['attrs'], f'{case!r}: link without rel=noopener')
        h = [''.join(r['html'].split('\n')) for r in out]  # marked puts newlines between block tags
        check('<h1>Title</h1>' in h[0] and '<strong>bold</strong>' in h[0] and '<em>italic</em>' in h[0]
              and '<em>also italic</em>' in h[0] and '<code>code &lt;b&gt;</code>' in h[0], f'inline formatting: {h[0]}')
        check('<pre><code class="language-js">if (a &lt; b) { alert("x") }</code></pre>' in h[1], f'code block: {h[1]}')
        check('<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>' in h[2] and '<ol><li>first</li><li>second</li></ol>' in h[2],
              f'lists: {h[2]}')
        check(h[3].count('<a ') == 1 and 'href="https://example.org/a?b=1&amp;c=2"' in h[3], f'links: {h[3]}')
        check('[bad](javascript:alert(1))' in out[3]['text'] and '[bad2](data:text/html,x)' in out[3]['text'],
              f'an unsafe link is not shown as written: {out[3]["text"]!r}')
        check('<a ' not in h[4].replace('<a href="https://e.org/', ''), f'quote breaking out of href: {h[4]}')
        check('<a href="https://x">raw</a>' in out[4]['text'], f'written HTML is not shown as text: {out[4]["text"]!r}')
        check('<em>' not in h[5], f'snake_case became italics: {h[5]}')
        # Entities are markdown's (CommonMark decodes them); tags stay text.
        check(out[6]['text'].strip() == '<img src=x onerror=alert(1)> & <', f'escaping: {h[6]}')
        check('<th>a</th>' in h[7] and '<td>1</td>' in h[7] and '&lt;b&gt;2&lt;/b&gt;' in h[7], f'table: {h[7]}')
        check('<script>alert(1)</script>' in out[8]['text'], f'an HTML block: {h[8]}')

    def step_rich_message(self):
        # A table and a code block as the page shows them: the code has its
        # language label, colours (highlight.js) and a copy button; the
        # message has its own copy button; the title and the session list
        # show plain text. In a session of its own.
        a = self.a
        a.find_element(By.ID, 'new-session').click()
        text = '**Plan** for `x`\n\n| step | cost |\n|---|---|\n| one | 1 |\n| two | 2 |\n\n```python\ndef f(x):\n    return x + 1\n```'
        self.js(a, "document.querySelector('#composer textarea').value = arguments[0]", text)
        a.find_element(By.ID, 'send').click()
        msgs = self.wait(a, self.settled(a, 2), 'the exchange with a table and code')
        q = msgs[0]['id']
        cells = a.find_elements(By.CSS_SELECTOR, f'[data-message-id="{q}"] .message-content table td')
        check([c.text for c in cells] == ['one', '1', 'two', '2'], f'table cells {[c.text for c in cells]}')
        lang = a.find_element(By.CSS_SELECTOR, f'[data-message-id="{q}"] .code-block .code-lang').text
        check(lang == 'python', f'code block label {lang!r}')
        self.wait(a, lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-message-id="{q}"] .code-block code [class^="hljs-"]'),
                  'the code block highlighted (highlight.js loaded on demand)')
        self.js(a, """window.__copied = [];
            Object.defineProperty(navigator, 'clipboard', {configurable: true, value: {
              writeText: (t) => { window.__copied.push(t); return Promise.resolve(); }}});""")
        copy = a.find_element(By.CSS_SELECTOR, f'[data-message-id="{q}"] .code-block .copy-code')
        self.js(a, "arguments[0].scrollIntoView({block: 'center'})", copy)  # clear of the toasts
        copy.click()
        self.button(a, q, 'copy').click()
        copied = self.wait(a, lambda d: (lambda c: c if len(c) == 2 else False)(self.js(d, 'return window.__copied')), 'two copies')
        check(copied[0].strip() == 'def f(x):\n    return x + 1', f'the code copy gave {copied[0]!r}')
        check(copied[1] == text, f'the message copy gave {copied[1]!r}')
        self.wait(a, lambda d: 'Copied' in self.button(d, q, 'copy').text, 'the copy button saying "Copied"')
        sid = self.js(a, "return new URLSearchParams(location.hash.slice(1)).get('session')")
        item = self.wait(a, lambda d: d.find_elements(By.CSS_SELECTOR, f'#session-list [data-session-id="{sid}"] .session-title'),
                         'the session in the list')[0]
        self.wait(a, lambda d: item.text and '**' not in item.text and '`' not in item.text, f'a plain-text session title, not {item.text!r}')
        title = a.find_element(By.ID, 'session-title').text
        check(title.startswith('Plan for x') and '**' not in title, f'the session title {title!r}')
        self.shot(a, '17-table-and-code')
        a.set_window_size(390, 844)
        try:
            overflow = self.js(a, 'return document.documentElement.scrollWidth - window.innerWidth')
            check(overflow <= 0, f'a table or code block makes the page {overflow}px wider than a phone')
            self.shot(a, '18-table-and-code-phone')
        finally:
            a.set_window_size(1280, 900)

    def step_error_notice(self):
        a = self.a
        before = len(a.find_elements(By.CSS_SELECTOR, '.notice[data-kind="error"]'))
        # Over the default 10000-character limit: the server's 413/422 envelope
        # must come back as a readable sentence, and nothing is added.
        self.js(a, "document.querySelector('#composer textarea').value = 'x'.repeat(20001)")
        a.find_element(By.ID, 'send').click()
        notice = self.wait(a, lambda d: (lambda n: n[before:] and n[-1])(d.find_elements(By.CSS_SELECTOR, '.notice[data-kind="error"]')),
                           'an error notice for an over-long message')
        text = notice.text.strip()
        check(text.startswith('Sending failed: ') and len(text) > 20 and '{' not in text, f'notice text {text!r}')
        check(len(self.messages(a)) == 4, 'an over-long message was added')
        self.shot(a, '12-error-notice')
        # It fits one line on a phone and goes by itself.
        a.set_window_size(390, 844)
        try:
            lines = self.js(a, "const t = arguments[0].querySelector('.notice-text'); return Math.round(t.scrollHeight / parseFloat(getComputedStyle(t).lineHeight))", notice)
            check(lines <= 1, f'the notice takes {lines} lines on a phone')
        finally:
            a.set_window_size(1280, 900)
        self.wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, '.notice[data-kind="error"]')) == before, 'the notice to close by itself', timeout=15)
        self.js(a, "document.querySelector('#composer textarea').value = ''")

    def step_rate_limit_notice(self):
        # Only the mock answers 429 on demand; a real mesh's limits are too
        # high to reach within this test without slowing it down.
        a = self.a
        before = len(a.find_elements(By.CSS_SELECTOR, '.notice[data-kind="error"]'))
        self.send_query(a, 'please rate limit me')
        notice = self.wait(a, lambda d: (lambda n: n[before:] and n[-1])(d.find_elements(By.CSS_SELECTOR, '.notice[data-kind="error"]')),
                           'a notice for a 429')
        text = notice.text
        check('actions' in text and 'minute' in text and 'Retry-After' not in text, f'the 429 notice does not name the limit: {text!r}')
        check('17 s' in text or '16 s' in text, f'the 429 notice does not say when to retry: {text!r}')
        # The countdown is live.
        self.wait(a, lambda d: '15 s' in notice.text or '14 s' in notice.text, 'the 429 countdown going down', timeout=5)
        self.shot(a, '12b-rate-limited')
        notice.find_element(By.CSS_SELECTOR, '.notice-close').click()
        self.js(a, "document.querySelector('#composer textarea').value = ''")

    def step_expired_draft(self):
        # Signed in with a token that runs out: the message typed meanwhile
        # is refused (401), and kept: the sign-in form says so, a reload keeps
        # it (sessionStorage), and after signing in again it is back in the
        # message box. In a new session, whose page holds no stream that
        # could meet the 401 first.
        a = self.a
        ttl = 15
        a.find_element(By.ID, 'sign-out').click()
        box = self.wait(a, lambda d: (lambda b: b.is_displayed() and b)(d.find_element(By.ID, 'token-input')), 'the sign-in form')
        short = self.mesh.mint(self.mesh.user, ttl=ttl)
        if not short:
            raise Skipped('a given URL cannot mint a short-lived token')
        part = short.split('.')[1]
        exp = json.loads(base64.urlsafe_b64decode(part + '=' * (-len(part) % 4)))['exp']
        box.send_keys(short)
        a.find_element(By.ID, 'sign-in').click()
        self.wait(a, lambda d: d.find_element(By.ID, 'user-name').text == self.mesh.user, 'signed in with the short-lived token')
        a.find_element(By.ID, 'new-session').click()
        draft = 'A question typed while the sign-in ran out,\nin two lines'
        a.find_element(By.CSS_SELECTOR, '#composer textarea').send_keys(draft.replace('\n', Keys.SHIFT + Keys.ENTER + Keys.SHIFT))
        check(a.find_element(By.CSS_SELECTOR, '#composer textarea').get_attribute('value') == draft, 'the draft was not typed')
        self.wait(a, lambda d: time.time() > exp + 1, f'the token to expire ({ttl} s)', timeout=ttl + TIMEOUT)
        session_ids = lambda: {x['session_id'] for x in self.mesh.api('/api/sessions', self.mesh.token)[1]['sessions']}  # noqa: E731
        sessions_before = session_ids()
        a.find_element(By.ID, 'send').click()
        self.wait(a, lambda d: d.find_element(By.ID, 'token-input').is_displayed(), 'the sign-in form after the 401')
        notes = [n.text for n in a.find_elements(By.CSS_SELECTOR, '.notice[data-kind="error"]')]
        check(any('sign in again' in t and 'kept' in t for t in notes), f'no notice offering to sign in again: {notes}')
        check(not any(t.startswith('Sending failed') for t in notes), f'a second notice for the same 401: {notes}')
        check(a.find_element(By.ID, 'draft-kept').is_displayed(), 'the sign-in form does not say the draft is kept')
        check(self.js(a, "return sessionStorage.getItem('chatmesh.draft')") == draft, 'the draft is not kept in sessionStorage')
        check(session_ids() == sessions_before, 'the refused message started a session')
        self.shot(a, '26-expired-draft-kept')
        a.refresh()
        box = self.wait(a, lambda d: (lambda b: b.is_displayed() and b)(d.find_element(By.ID, 'token-input')), 'the sign-in form after a reload')
        check(a.find_element(By.ID, 'draft-kept').is_displayed(), 'the kept draft is not mentioned after a reload')
        self.install_probe(a)
        box.send_keys(self.mesh.token)
        a.find_element(By.ID, 'sign-in').click()
        self.wait(a, lambda d: d.find_element(By.ID, 'user-name').text == self.mesh.user, 'signed in again')
        self.wait(a, lambda d: d.find_element(By.CSS_SELECTOR, '#composer textarea').get_attribute('value') == draft,
                  'the draft back in the message box')
        check(self.js(a, "return sessionStorage.getItem('chatmesh.draft')") is None, 'the draft stays in sessionStorage after it came back')
        check(a.find_element(By.ID, 'draft-kept').get_attribute('hidden') is not None, 'the note about a kept draft stays')
        self.shot(a, '27-draft-back')
        self.js(a, "document.querySelector('#composer textarea').value = ''")

    def step_keyboard(self):
        a = self.a
        box = a.find_element(By.CSS_SELECTOR, '#composer textarea')
        box.click()
        box.send_keys(Keys.TAB)
        self.wait(a, lambda d: self.js(d, 'return document.activeElement.id') == 'send', 'Tab from the message box reaches Send')
        outline = self.js(a, 'const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]')
        check(outline[0] != 'none' and outline[1] != '0px', f'no visible focus style on Send: {outline}')
        unnamed = self.js(a, """return [...document.querySelectorAll('button')].filter((b) =>
            !(b.getAttribute('aria-label') || b.textContent.trim())).length""")
        check(unnamed == 0, f'{unnamed} button(s) without an accessible name')
        inline = self.js(a, """return [...document.querySelectorAll('*')].filter((e) =>
            [...e.attributes].some((x) => x.name.startsWith('on'))).length""")
        check(inline == 0, f'{inline} element(s) with inline event handlers')

    def step_phone(self):
        a = self.a
        a.set_window_size(390, 844)
        try:
            self.wait(a, lambda d: d.find_element(By.ID, 'toggle-sessions').is_displayed(), 'the sessions button at phone width')
            overflow = self.js(a, 'return document.documentElement.scrollWidth - window.innerWidth')
            check(overflow <= 0, f'the page is {overflow}px wider than a phone screen')
            self.shot(a, '13-phone')
            a.find_element(By.ID, 'toggle-sessions').click()
            self.wait(a, lambda d: d.find_element(By.ID, 'session-list').is_displayed(), 'the session list opened')
            self.shot(a, '14-phone-sessions')
            a.find_element(By.ID, 'toggle-sessions').click()
            self.wait(a, lambda d: not d.find_element(By.ID, 'session-list').is_displayed(), 'the session list closed')
        finally:
            a.set_window_size(1280, 900)

    def step_sign_out(self):
        a = self.a
        a.find_element(By.ID, 'sign-out').click()
        self.wait(a, lambda d: d.find_element(By.ID, 'token-input').is_displayed(), 'the sign-in form after signing out')
        check(self.js(a, "return localStorage.getItem('chatmesh.token')") is None, 'the token is still stored')

    def step_console(self):
        problems = []
        for d in (self.a, self.b):
            if not d:
                continue
            for entry in d.get_log('browser'):
                msg = entry.get('message', '')
                if 'Content Security Policy' in msg or 'Uncaught' in msg or (entry.get('level') == 'SEVERE' and '.js' in msg and 'api/' not in msg):
                    problems.append(msg)
        check(not problems, 'browser console: ' + ' | '.join(problems[:5]))

    def run(self):
        os.makedirs(SHOTS, exist_ok=True)
        for name in os.listdir(SHOTS):
            if name.startswith('FAIL-'):
                os.remove(os.path.join(SHOTS, name))
        self.a = new_driver()
        mock, real = self.mesh.mock, not self.mesh.mock
        steps = [
            ('sign_in', self.step_sign_in, True),
            ('ask_and_stream', self.step_ask, True),
            ('second_window', self.step_second_window, True),
            ('regenerate', self.step_regenerate, True),
            ('votes', self.step_votes, True),
            ('reload_keeps_thoughts', self.step_reload_keeps_thoughts, True),
            ('reload_mid_generation', self.step_reload_mid_generation, True),
            ('version_arrows', self.step_versions, real),
            ('reconnect_replay', self.step_reconnect_replay, mock),
            ('edit_with_regeneration', self.step_edit, True),
            ('edit_history', self.step_edit_history, True),
            ('delete_with_followers', self.step_delete, True),
            ('undo_delete', self.step_undo_delete, True),
            ('session_rename', self.step_session_rename, True),
            ('export', self.step_export, True),
            ('session_delete_undo', self.step_session_delete_undo, True),
            ('session_paging', self.step_session_paging, mock),
            ('markup_is_text', self.step_xss, True),
            ('markdown_renderer', self.step_markdown, True),
            ('error_notice', self.step_error_notice, True),
            ('rate_limit_notice', self.step_rate_limit_notice, mock),
            ('stop_answer', self.step_stop, True),
            ('continue_after_stop', self.step_continue, True),
            ('table_code_copy', self.step_rich_message, True),
            ('dark_screenshots', self.step_dark_screenshots, True),
            ('admin_dashboard', self.step_dashboard, True),
            ('expired_token_keeps_draft', self.step_expired_draft, True),
            ('keyboard_and_a11y', self.step_keyboard, True),
            ('phone_width', self.step_phone, True),
            ('console_clean', self.step_console, True),
            ('sign_out', self.step_sign_out, True),
        ]
        unknown = set(self.only or ()) - {name for name, _, _ in steps}
        if unknown:
            sys.exit(f'--only: no step named {", ".join(sorted(unknown))}')
        try:
            for name, fn, runs in steps:
                if runs and (not self.only or name in self.only or name in ALWAYS):
                    self.run_step(name, fn)
        finally:
            for d in (self.a, self.b, self.c):
                if d:
                    d.quit()
        print(f'{self.passed} passed, {self.failed} failed', flush=True)
        return 0 if self.failed == 0 else 1


def main():
    args = sys.argv[1:]
    mock = '--mock' in args
    only = None
    if '--only' in args:
        i = args.index('--only')
        if i + 1 >= len(args):
            sys.exit('--only needs step names, comma-separated')
        only = [x for x in args[i + 1].split(',') if x]
    with Mesh(mock) as mesh:
        print(f'testing {mesh.url}/ as {mesh.user}{" (mock gateway)" if mock else ""}', flush=True)
        return UiTest(mesh, only).run()


if __name__ == '__main__':
    sys.exit(main())
