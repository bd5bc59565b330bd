"""tests/realmodel/realmodel.py: the pieces the real-model test and its
benchmark share: the model server and the proxy as child processes, the
gateway's API, and one session's event stream read on a thread.
Standard library only; every address is 127.0.0.1."""
import http.client
import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.request

HOST = "127.0.0.1"
MODEL_NAME = "gemma3-270m"


def wait_for(what, predicate, seconds, step=0.05):
    """predicate() until it is truthy (returned), else AssertionError after seconds."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (seconds, what))
        time.sleep(step)


def http_json(method, port, path, body=None, token=None, timeout=30):
    """(status, parsed JSON or None) of one request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, None


def note_pid(log_path, proc):
    """Writes LOG.pid beside the log, so the shell can end the child if we die."""
    with open(log_path[:-len(".log")] + ".pid", "w") as out:
        out.write("%d\n" % proc.pid)


class ModelServer:
    """llama_cpp.server on 127.0.0.1:port, ready once /v1/models answers."""

    def __init__(self, venv, model, port, log_path):
        self.venv, self.model, self.port, self.log_path = venv, model, port, log_path
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.venv, "bin", "python"), "-m", "llama_cpp.server",
             "--model", self.model, "--model_alias", MODEL_NAME, "--chat_format", "gemma",
             "--n_ctx", "2048", "--host", HOST, "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        note_pid(self.log_path, self.proc)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("the model server exited (%s); log: %s"
                                     % (self.proc.returncode, self.log_path))
            try:
                return http_json("GET", self.port, "/v1/models", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for("the model server on port %d" % self.port, ready, 120, 0.2)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Proxy:
    """tests/realmodel/proxy.py between the regenerator and the model server."""

    def __init__(self, port, upstream_port, control_port, log_path):
        self.port, self.upstream_port, self.control_port = port, upstream_port, control_port
        self.log_path, self.proc = log_path, None

    def start(self):
        log = open(self.log_path, "ab")
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(here, "proxy.py"), str(self.port),
             str(self.upstream_port), str(self.control_port)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        note_pid(self.log_path, self.proc)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("the proxy exited; log: %s" % self.log_path)
            try:
                return self.exchanges() is not None
            except OSError:
                return False
        wait_for("the proxy", ready, 20)

    def exchanges(self):
        return http_json("GET", self.control_port, "/stats", timeout=5)[1]["exchanges"]

    def fail_429(self, count, retry_after):
        assert http_json("POST", self.control_port, "/fail429/%d/%d" % (count, retry_after))[0] == 200

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class Events:
    """GET /api/run_sse/{session}: (monotonic time, event, data) on a queue."""

    def __init__(self, port, token, session_id):
        self.items = queue.Queue()
        self.conn = http.client.HTTPConnection(HOST, port, timeout=300)
        self.conn.request("GET", "/api/run_sse/" + session_id,
                          headers={"Authorization": "Bearer " + token,
                                   "Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, "SSE open answered %d" % self.response.status
        threading.Thread(target=self._read, daemon=True).start()
        self.next("connection_status", None, 10)

    def _read(self):
        event, data = None, []
        try:
            for raw in self.response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and event:
                    self.items.put((time.monotonic(), event, json.loads("\n".join(data))))
                    event, data = None, []
        except (OSError, ValueError):
            pass

    def next(self, event, task_id, seconds):
        """The next event named `event` (of task_id when given), skipping others."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s event within %.0f s" % (event, seconds))
            try:
                at, name, data = self.items.get(timeout=left)
            except queue.Empty:
                continue
            if name == event and (task_id is None or data.get("taskId") == task_id):
                return at, data

    def until_end(self, task_id, seconds):
        """Every event of task_id up to its terminal one: [(time, event, data)]."""
        seen, deadline = [], time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("task %s did not end within %.0f s" % (task_id, seconds))
            try:
                at, name, data = self.items.get(timeout=left)
            except queue.Empty:
                continue
            if data.get("taskId") != task_id:
                continue
            seen.append((at, name, data))
            if name in ("message_regenerated", "regeneration_error"):
                return seen

    def close(self):
        self.conn.close()


class Mesh:
    """The gateway's API as one user."""

    def __init__(self, port, token):
        self.port, self.token = port, token

    def call(self, method, path, body=None, want=200):
        status, answer = http_json(method, self.port, path, body, self.token)
        assert status == want, "%s %s answered %d: %s" % (method, path, status, answer)
        return answer

    def start_session(self, session_id, query):
        return self.call("POST", "/api/run_sse/" + session_id, {"query": query})["data"]

    def regenerate(self, message_id):
        return self.call("POST", "/api/messages/%s/regenerate" % message_id, {})["data"]["task_id"]

    def task(self, task_id):
        return self.call("GET", "/api/messages/tasks/%s/status" % task_id)

    def message(self, session_id, message_id):
        messages = self.call("GET", "/api/sessions/" + session_id)["session"]["messages"]
        return next(m for m in messages if m["id"] == message_id)


def direct_stream(port, body):
    """POST body to the model server itself, streamed: (seconds to the first
    content token, seconds to the end, content, usage or None)."""
    request = urllib.request.Request("http://%s:%d/v1/chat/completions" % (HOST, port),
                                     json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    start, first, content, usage = time.monotonic(), None, [], None
    with urllib.request.urlopen(request, timeout=120) as response:
        for raw in response:
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    if first is None:
                        first = time.monotonic() - start
                    content.append(text)
    return first, time.monotonic() - start, "".join(content), usage
