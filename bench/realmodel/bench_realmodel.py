"""bench/realmodel/bench_realmodel.py: time to first token and tokens/s of
a real model server, through chatmesh and directly, in one run.

Run by bench/realmodel/run (which starts the mesh with the openai backend
aimed straight at the model server's port and passes RM_* variables). Each
round makes one request each way with the same question and settings,
alternating which goes first. Direct: POST /v1/chat/completions to the
server, clock from just before the request to the first content delta.
Through chatmesh: POST /api/messages/{id}/regenerate, clock from just before
it to the first regeneration_progress carrying partialContent on an open
SSE stream (so the gateway, the store's commit, the claim, the regenerator's
request, its first progress commit and the broadcaster are all inside).
tokens/s: (tokens - 1) / (last token - first token), the mesh's end being
message_regenerated. Also when message_regenerating (the claim) arrived,
which is the part of the overhead before the model is asked. The tokens are the answer's, counted by the server's
/extras/tokenize/count after the round (llama-cpp-python's stream reports no
usage), less what an empty text counts (BOS). Prints p50/p90 of each and of the per-round
difference."""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "realmodel"))
from realmodel import (MODEL_NAME, Events, Mesh, ModelServer, direct_stream,  # noqa: E402
                       http_json, wait_for)

ENV = os.environ
ROUNDS = int(ENV.get("RM_ROUNDS", "30"))
WARMUP = 3
MAX_TOKENS = int(ENV["CHATMESH_OPENAI_MAX_TOKENS"])
QUESTION = "Write a short poem about the sea."
TEMPERATURE = 0.7  # RG_TASK_DEFAULT_TEMPERATURE: what a regenerate without one sends
SESSION = "bench_realmodel_%d" % os.getpid()


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))]


def count_tokens(port, text):
    status, answer = http_json("POST", port, "/extras/tokenize/count", {"input": text})
    assert status == 200, answer
    return answer["count"]


def rate(port, text, seconds, bos):
    tokens = count_tokens(port, text) - bos
    return (tokens - 1) / seconds if tokens > 1 and seconds > 0 else None


def direct(port, bos):
    body = {"model": MODEL_NAME, "stream": True, "stream_options": {"include_usage": True},
            "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": QUESTION}]}
    first, end, content, _ = direct_stream(port, body)
    return first * 1000, rate(port, content, end - first, bos)


def through(mesh, events, message_id, port, bos):
    start = time.monotonic()
    task = mesh.regenerate(message_id)
    seen = events.until_end(task, 120)
    assert seen[-1][1] == "message_regenerated", seen[-1]
    first = next(at for at, e, d in seen if e == "regeneration_progress" and d.get("partialContent"))
    claimed = next(at for at, e, d in seen if e == "message_regenerating")
    end, content = seen[-1][0], seen[-1][2]["content"]
    return (first - start) * 1000, rate(port, content, end - first, bos), (claimed - start) * 1000


def main():
    server = ModelServer(ENV["RM_VENV"], ENV["RM_MODEL"], int(ENV["RM_MODEL_PORT"]),
                         os.path.join(ENV["RM_WORK"], "model-server.log"))
    server.start()
    try:
        mesh = Mesh(int(ENV["RM_HTTP_PORT"]), ENV["RM_TOKEN"])
        data = mesh.start_session(SESSION, QUESTION)
        wait_for("the first answer", lambda: mesh.task(data["task_id"])["status"]
                 in ("completed", "failed"), 120, 0.2)
        events = Events(mesh.port, mesh.token, SESSION)
        message_id = data["assistant_message_id"]
        port = int(ENV["RM_MODEL_PORT"])
        bos = count_tokens(port, "")
        results = {"direct": [], "mesh": []}
        for i in range(WARMUP + ROUNDS):
            order = ("direct", "mesh") if i % 2 == 0 else ("mesh", "direct")
            pair = {}
            for way in order:
                pair[way] = (direct(port, bos) if way == "direct"
                             else through(mesh, events, message_id, port, bos))
            if i >= WARMUP:
                for way in results:
                    results[way].append(pair[way])
        ttft = {w: [r[0] for r in results[w]] for w in results}
        rate = {w: [r[1] for r in results[w] if r[1]] for w in results}
        diff = [m - d for m, d in zip(ttft["mesh"], ttft["direct"])]
        print("bench_realmodel: %d rounds (+%d warm-up), max_tokens %d, load average %s"
              % (ROUNDS, WARMUP, MAX_TOKENS, open("/proc/loadavg").read().split()[0]))
        for way in ("direct", "mesh"):
            print("  %-6s first token p50 %7.2f ms  p90 %7.2f ms   tokens/s p50 %6.1f"
                  % (way, pct(ttft[way], 0.5), pct(ttft[way], 0.9), statistics.median(rate[way])))
        claims = [r[2] for r in results["mesh"]]
        print("  mesh   message_regenerating (claimed) p50 %.2f ms  p90 %.2f ms"
              % (pct(claims, 0.5), pct(claims, 0.9)))
        print("  overhead (mesh - direct, per round) p50 %.2f ms  p90 %.2f ms; p50 ratio %.2f"
              % (pct(diff, 0.5), pct(diff, 0.9), pct(ttft["mesh"], 0.5) / pct(ttft["direct"], 0.5)))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
