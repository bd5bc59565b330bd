#!/usr/bin/env python3
"""sse_fan.py: many SSE readers in one process, for tests/netns/run's
broadcaster kill. Python's standard library only (selectors, sockets).

Usage: sse_fan.py --token T --sessions S1,S2,.. --gateways HOST:PORT,..
                  --per-session N --ready FILE --expect FILE [--timeout S]

Opens N readers per session, spread over the gateways in turn, 50 at a
time, and reads them all on one selector. Once every stream has sent its
head (200) and its connection_status, it creates --ready (a stream refused
or closed meanwhile: exit 1 at once). The caller then votes; the
first vote on each session is the marker every reader's checked stream
starts with. When --expect appears (JSON {session: votes cast}), the
readers are read until each holds that many feedback_submitted events
(or --timeout passes); then every reader must hold, from its first vote
on: one epoch, consecutive seqs, exactly `votes` vote events, a vote as
the last event, the same first and last id as every reader of its
session, no resync, and its stream still open. Prints one line per
failure (at most 20) and a summary; exit 0 when all hold, 1 otherwise.
"""
import argparse
import json
import os
import selectors
import socket
import sys
import time


class Reader:
    def __init__(self, session, host, port, token):
        self.session = session
        self.where = "%s:%d" % (host, port)
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.sendall(("GET /api/run_sse/%s HTTP/1.1\r\nHost: %s\r\n"
                           "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n"
                           % (session, host, token)).encode())
        self.sock.setblocking(False)
        self.buffer = b""
        self.status = 0
        self.head_done = False
        self.closed = False
        self.resyncs = 0
        self.events = []  # (epoch, seq, type); -1, -1 without an id
        self.block = {}

    def feed(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for raw in lines:
            self.line(raw.rstrip(b"\r").decode("utf-8", "replace"))

    def line(self, line):
        if not self.head_done:
            if not self.status and line.startswith("HTTP/1."):
                self.status = int(line.split()[1])
            self.head_done = line == ""
            return
        if line == "":
            if "event" in self.block:
                epoch, seq = self.block.get("id", (-1, -1))
                self.events.append((epoch, seq, self.block["event"]))
                if self.block["event"] == "session_updated" and self.block.get("resync"):
                    self.resyncs += 1
            self.block = {}
        elif line.startswith("id: "):
            epoch, _, seq = line[4:].partition("-")
            self.block["id"] = (int(epoch), int(seq))
        elif line.startswith("event: "):
            self.block["event"] = line[7:]
        elif line.startswith("data: ") and self.block.get("event") == "session_updated":
            self.block["resync"] = json.loads(line[6:]).get("resync") is True

    def votes(self):
        return sum(1 for e in self.events if e[2] == "feedback_submitted")


def check(reader, votes):
    """The reader's stream from its first vote on; (first seq, last seq) or a failure text."""
    if reader.closed or reader.status != 200 or reader.resyncs:
        return "closed %s, status %d, %d resyncs" % (reader.closed, reader.status, reader.resyncs)
    start = next((i for i, e in enumerate(reader.events) if e[2] == "feedback_submitted"), None)
    if start is None:
        return "no vote event in %d events" % len(reader.events)
    checked = reader.events[start:]
    epoch, first, _ = checked[0]
    for i, (e, s, kind) in enumerate(checked):
        if (e, s) != (epoch, first + i):
            return "event %d has id %d-%d, wanted %d-%d (%s)" % (i, e, s, epoch, first + i, kind)
    got = sum(1 for e in checked if e[2] == "feedback_submitted")
    if got != votes or checked[-1][2] != "feedback_submitted":
        return "%d vote events for %d votes, the last event %s" % (got, votes, checked[-1][2])
    return first, checked[-1][1]


def main():
    parser = argparse.ArgumentParser()
    for name in ("token", "sessions", "gateways", "ready", "expect"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--per-session", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args()
    gateways = [(g.rsplit(":", 1)[0], int(g.rsplit(":", 1)[1])) for g in args.gateways.split(",")]
    sessions = args.sessions.split(",")
    selector = selectors.DefaultSelector()
    readers = []

    def pump(seconds):
        for key, _ in selector.select(seconds):
            reader = key.data
            reader.feed()
            if reader.closed:
                selector.unregister(reader.sock)

    # 50 at a time, each batch attached before the next: a burst of 300
    # at fresh gateways got 503s under ASan (their new store connections
    # took longer than the gateway's connect wait), not this test's subject.
    wanted = [(session, n) for session in sessions for n in range(args.per_session)]
    for batch in range(0, len(wanted), 50):
        for session, _ in wanted[batch:batch + 50]:
            host, port = gateways[len(readers) % len(gateways)]
            reader = Reader(session, host, port, args.token)
            selector.register(reader.sock, selectors.EVENT_READ, reader)
            readers.append(reader)
        deadline = time.monotonic() + 10
        while not all(r.status and r.events or r.closed for r in readers):
            if time.monotonic() > deadline:
                print("sse_fan: streams not attached within 10 s")
                return 1
            pump(0.1)
        refused = [r for r in readers if r.closed or r.status != 200]
        if refused:
            print("sse_fan: %d of %d streams refused (status %d) or closed"
                  % (len(refused), len(readers), refused[-1].status))
            return 1
    with open(args.ready, "w") as ready:
        ready.write("%d\n" % len(readers))
    while not os.path.exists(args.expect):
        pump(0.1)
    with open(args.expect) as expect:
        votes = json.load(expect)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and not all(
            r.closed or r.votes() >= votes[r.session] for r in readers):
        pump(0.1)

    failures = []
    ends = {}
    for i, reader in enumerate(readers):
        result = check(reader, votes[reader.session])
        if isinstance(result, tuple) and ends.setdefault(reader.session, result) != result:
            result = "seqs %d..%d, the session's first reader %d..%d" % (
                result + ends[reader.session])
        if not isinstance(result, tuple):
            failures.append("reader %d (%s via %s): %s" % (i, reader.session, reader.where, result))
    for failure in failures[:20]:
        print("sse_fan:", failure)
    events = sum(last - first + 1 for first, last in ends.values())
    print("sse_fan: %d readers on %d sessions over %d gateways, %d of them failed; "
          "%d events on the sessions, %d deliveries checked"
          % (len(readers), len(sessions), len(gateways), len(failures), events,
             events * args.per_session))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
