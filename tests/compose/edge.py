#!/usr/bin/env python3
"""Issue 25's framing and exhaustion checks, through the compose stack's nginx.

svc_framing and svc_exhaust prove them against one gateway; this proves
that the edge people deploy (nginx terminating TLS, two gateways behind
it) keeps them. Usage:

    edge.py HOST:PORT TOKEN MESSAGE_ID SESSION_ID [--idle N] [--slow N] [--deadline-ms MS]

MESSAGE_ID is a user message the token may edit, SESSION_ID its session.
It prints one "ok"/"FAIL" line per check (tests/compose/scenario.sh's
format) and exits 1 when one failed.

Framing: each ambiguous request of svc_framing's table is sent raw over
TLS with an edit of MESSAGE_ID smuggled behind it. Either nginx or the
gateway refuses it (a 4xx/5xx) and the smuggled edit is never stored.
nginx frames what it forwards itself, so whatever it accepted reaches the
gateways unambiguous. Valid framing is served (200).

Exhaustion: IDLE connections that never start TLS and SLOW ones that
finish the handshake and then send a request head one header every 5 s
are held on nginx while fresh TLS connections time GET /healthz and the
session GET; then nginx must cut all of them at its head deadline
(CHATMESH_HEADER_TIMEOUT_MS, given as --deadline-ms, default 10000; the
flood must be open and measured within it). Every probe must be answered 200 and none may wait a
second (starvation, what the issue is about); the flooded/quiet p99
ratio is printed, not bounded (a speed figure; docs/performance.md).
"""
import resource
import selectors
import socket
import ssl
import statistics
import sys
import time

passed = 0
failed = 0


def check(description, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print("ok   " + description)
    else:
        failed += 1
        print("FAIL " + description + (": " + detail if detail else ""))
    sys.stdout.flush()


_context = None


def tls_context():
    """One context for every connection: making one loads the system's CA
    store, which costs more than the request being timed."""
    global _context
    if _context is None:
        _context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _context.check_hostname = False
        _context.verify_mode = ssl.CERT_NONE  # the stack's self-signed certificate
    return _context


def exchange(host, port, request, timeout=10.0):
    """Sends request on a new TLS connection; returns everything read until
    the server closes or goes quiet for a second after answering."""
    raw = socket.create_connection((host, port), timeout=timeout)
    tls = tls_context().wrap_socket(raw, server_hostname="chatmesh")
    tls.sendall(request)
    received = b""
    deadline = time.monotonic() + timeout
    tls.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            chunk = tls.recv(65536)
        except socket.timeout:
            if received:
                break
            continue
        except (ssl.SSLError, ConnectionError):
            break
        if not chunk:
            break
        received += chunk
    tls.close()
    return received


def status_of(response):
    line = response.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def edit_request(message_id, token, content):
    body = ('{"content": "%s", "trigger_regeneration": false}' % content).encode()
    return (b"PUT /api/messages/%s HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (message_id.encode(), token.encode(), len(body), body))


# The ambiguous rows of tests/service/svc_framing.c: {EDIT} is the smuggled
# edit, {N} the byte count of everything after the head.
AMBIGUOUS = [
    ("CL then TE", b"POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: {N}\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{EDIT}"),
    ("TE then CL", b"POST /healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Length: {N}\r\n\r\n0\r\n\r\n{EDIT}"),
    ("two Content-Lengths, short first",
     b"POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 0\r\nContent-Length: {N}\r\n\r\n{EDIT}"),
    ("two Content-Lengths, long first",
     b"POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 9999\r\nContent-Length: 0\r\n\r\n{EDIT}"),
    ("obs-fold swallows Content-Length",
     b"POST /healthz HTTP/1.1\r\nHost: g\r\nX-Note: a\r\n Content-Length: {N}\r\n"
     b"Content-Length: 0\r\n\r\n{EDIT}"),
    ("space before colon, TE",
     b"POST /healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{EDIT}"),
    ("space before colon, CL", b"POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length : 0\r\n\r\n{EDIT}"),
    ("hex Content-Length", b"POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 0x21\r\n\r\n{EDIT}"),
    ("signed Content-Length", b"POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: +0\r\n\r\n{EDIT}"),
    ("Content-Length with junk",
     b"POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 0abc\r\n\r\n{EDIT}"),
    ("bare LF", b"POST /healthz HTTP/1.1\nHost: g\nContent-Length: 0\n\n{EDIT}"),
    ("no Host", b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n{EDIT}"),
    ("two Hosts", b"POST /healthz HTTP/1.1\r\nHost: g\r\nHost: h\r\nContent-Length: 0\r\n\r\n{EDIT}"),
    ("gzip coding", b"POST /healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: gzip\r\n\r\n{EDIT}"),
    ("chunk size not hex", b"POST /healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"zz\r\n{}\r\n0\r\n\r\n{EDIT}"),
    ("chunk size too long", b"POST /healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"10000000000000002\r\n{}\r\n0\r\n\r\n{EDIT}"),
]


def expand(template, edit):
    after = edit + (b"0\r\n\r\n" if b"\r\n\r\n0\r\n\r\n" in template else b"")
    return template.replace(b"{N}", str(len(after)).encode()).replace(b"{EDIT}", edit)


def session_contents(host, port, token, session_id):
    response = exchange(host, port, b"GET /api/sessions/%s HTTP/1.1\r\nHost: g\r\n"
                        b"Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                        % (session_id.encode(), token.encode()))
    return response if status_of(response) == 200 else b""


def framing(host, port, token, message_id, session_id):
    answers = {}
    for number, (name, template) in enumerate(AMBIGUOUS):
        marker = "SMUGGLED-%d" % number
        response = exchange(host, port, expand(template, edit_request(message_id, token, marker)))
        answers[marker] = (name, response.count(b"HTTP/1.1 "))
        status = status_of(response)
        check("nginx: %s is refused (%d)" % (name, status), status >= 400, "status %d" % status)
    contents = session_contents(host, port, token, session_id)
    check("nginx: the session reads back after the framing cases", contents != b"")
    # An edit behind a refused request is stored only if nginx itself read
    # it as the client's next request (it accepts bare LF line ends, as RFC
    # 9112 2.2 lets a recipient) and answered it: then the client saw as many
    # answers as requests ran, which is no desync. Smuggling is an edit that
    # ran without an answer of its own.
    for marker, (name, count) in answers.items():
        if marker.encode() + b'"' in contents:
            check("nginx: %s: the edit behind it ran only as an answered request" % name, count >= 2,
                  "stored, but the client got %d answer(s)" % count)
    valid = edit_request(message_id, token, "edge-valid")
    status = status_of(exchange(host, port, valid.replace(b"Host: g\r\n", b"Host: g\r\nConnection: close\r\n")))
    check("nginx: a valid Content-Length edit is served (%d)" % status, status == 200)
    body = b'{"content":"edge-chunked","trigger_regeneration":false}'
    chunked = (b"PUT /api/messages/%s HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer %s\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
               % (message_id.encode(), token.encode(), 10, body[:10], len(body) - 10, body[10:]))
    status = status_of(exchange(host, port, chunked))
    check("nginx: a valid chunked edit is served (%d)" % status, status == 200)
    check("nginx: the chunks were joined", b"edge-chunked" in session_contents(host, port, token, session_id))
    body = b'{"content":"edge-extension","trigger_regeneration":false}'
    extended = (b"PUT /api/messages/%s HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer %s\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                b"%x;a=b\r\n%s\r\n0;c\r\n\r\n" % (message_id.encode(), token.encode(), len(body), body))
    status = status_of(exchange(host, port, extended))
    check("nginx: a chunked edit with chunk extensions is served (%d)" % status, status == 200)
    check("nginx: the extensions were dropped",
          b"edge-extension" in session_contents(host, port, token, session_id))


def timed_get(host, port, path, token):
    auth = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
    start = time.monotonic()
    response = exchange(host, port, b"GET %s HTTP/1.1\r\nHost: g\r\n%sConnection: close\r\n\r\n"
                        % (path.encode(), auth), timeout=15.0)
    return (time.monotonic() - start) * 1000.0, status_of(response)


def probe(host, port, token, session_id, samples):
    """{name: (times in ms, answers that were not 200)}"""
    results = {}
    for name, path, auth in (("GET /healthz", "/healthz", None),
                             ("GET /api/sessions/{id}", "/api/sessions/" + session_id, token)):
        times, bad = [], 0
        for _ in range(samples):
            elapsed, status = timed_get(host, port, path, auth)
            times.append(elapsed)
            bad += status != 200
        results[name] = (times, bad)
    return results


def p99(times):
    ordered = sorted(times)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


class Flood:
    """IDLE plain TCP connections and SLOW TLS ones that drip a head."""

    def __init__(self, host, port, idle, slow):
        # The slow ones first: their handshakes take the longest, and
        # nginx's header deadline (10 s) runs from each one's start.
        self.idle, self.slow = [], []
        context = tls_context()
        for _ in range(slow):
            tls = context.wrap_socket(socket.create_connection((host, port), timeout=10),
                                      server_hostname="chatmesh")
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: g\r\n")
            self.slow.append(tls)
        for _ in range(idle):
            self.idle.append(socket.create_connection((host, port), timeout=10))
        self.dripped = time.monotonic()

    def drip(self):
        """One more header line on every slow connection, every 5 s."""
        if time.monotonic() - self.dripped < 5:
            return
        for tls in self.slow:
            try:
                tls.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass
        self.dripped = time.monotonic()

    def still_open(self):
        """Connections nginx has not closed. An idle one that is readable
        is closed (nothing else comes on it); a slow one is open while a
        read finds no application data (TLS 1.3 session tickets arrive
        after the handshake, so readable is not closed there)."""
        selector = selectors.DefaultSelector()
        for sock in self.idle:
            selector.register(sock, selectors.EVENT_READ)
        open_count = len(self.idle) - len(selector.select(timeout=0.2))
        selector.close()
        for tls in self.slow:
            tls.setblocking(False)
            try:
                tls.recv(1)  # data (nginx's 408) or b"": closed
            except ssl.SSLWantReadError:
                open_count += 1
            except OSError:
                pass
            tls.settimeout(10)
        return open_count

    def close(self):
        for sock in self.idle + self.slow:
            sock.close()


def exhaustion(host, port, token, session_id, idle, slow, deadline_ms):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = idle + slow + 256
    if hard < needed:
        check("nginx: exhaustion needs %d descriptors" % needed, False, "RLIMIT_NOFILE %d" % hard)
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    quiet = probe(host, port, token, session_id, 200)
    started = time.monotonic()
    flood = Flood(host, port, idle, slow)
    opened = time.monotonic() - started
    flooded = {name: ([], 0) for name in quiet}
    try:
        for _ in range(2):  # 2 x 50 per probe, dripping the slow heads between
            flood.drip()
            for name, (times, bad) in probe(host, port, token, session_id, 50).items():
                flooded[name] = (flooded[name][0] + times, flooded[name][1] + bad)
        held = flood.still_open()
        measured = time.monotonic() - started
        check("nginx: the flood is held while measured (%d of %d open, %.1f s to open, %.1f s in all)"
              % (held, idle + slow, opened, measured), held == idle + slow)
        # Then the header deadline ends it: nothing of the flood stays.
        limit = deadline_ms / 1000.0 + 15
        while flood.still_open() and time.monotonic() - started < limit:
            flood.drip()
            time.sleep(0.5)  # polled: the condition is nginx closing them
        left = flood.still_open()
        check("nginx cuts the flood at its header deadline (%d left after %.0f s)"
              % (left, time.monotonic() - started), left == 0)
    finally:
        flood.close()
    for name in quiet:
        quiet_times, quiet_bad = quiet[name]
        times, bad = flooded[name]
        print("edge: %-24s p99 quiet %.2f ms, flooded %.2f ms: ratio %.2f (max %.1f ms)"
              % (name, p99(quiet_times), p99(times), p99(times) / p99(quiet_times), max(times)))
        check("nginx: %s answered 200 under the flood" % name, bad == 0 and quiet_bad == 0,
              "%d quiet and %d flooded answers were not 200" % (quiet_bad, bad))
        check("nginx: no %s waited a second under the flood" % name, max(times) < 1000.0,
              "the slowest took %.0f ms" % max(times))


def main():
    args = sys.argv[1:]
    options = {"--idle": 10000, "--slow": 1000, "--deadline-ms": 10000}
    while len(args) > 4 and args[-2] in options:
        options[args[-2]] = int(args[-1])
        args = args[:-2]
    if len(args) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    address, token, message_id, session_id = args
    host, port = address.rsplit(":", 1)
    framing(host, int(port), token, message_id, session_id)
    exhaustion(host, int(port), token, session_id, options["--idle"], options["--slow"],
               options["--deadline-ms"])
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
