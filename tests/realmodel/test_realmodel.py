"""tests/realmodel/test_realmodel.py: the mesh against a real model server.

Run by tests/realmodel/run, which built the venv and the model, started the
four services (`./chatmesh up --detach`, openai backend aimed at the proxy's
port) and passes everything in RM_* variables. This starts llama_cpp.server
and tests/realmodel/proxy.py in front of it, then, in order:
  regenerate   real text streams (growing partialContent) and is committed;
               the request carried max_tokens and include_usage; usage is
               stored exactly when the server reported it;
  edit         an edit with trigger_regeneration answers the new question;
  cancel       a cancel mid-answer ends the task and the regenerator drops
               the connection (the server sees the disconnect);
  429          two 429s from the proxy are retried after Retry-After;
  kill         the server (and proxy) killed mid-answer: the task fails with
               the backend's error within its retries, nothing hangs, and
               once the server is back a regenerate works;
  max_tokens   with CHATMESH_OPENAI_MAX_TOKENS=8 (regenerator restarted) the
               answer is cut: finish_reason length, at most 8 tokens.
Prints "N passed, N failed"; exits 1 on any failure."""
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from realmodel import Events, Mesh, ModelServer, Proxy, wait_for  # noqa: E402

ENV = os.environ
WORK = ENV["RM_WORK"]
MAX_TOKENS = int(ENV["CHATMESH_OPENAI_MAX_TOKENS"])
CUT_TOKENS = 8
SESSION = "realmodel_%d" % os.getpid()

server = ModelServer(ENV["RM_VENV"], ENV["RM_MODEL"], int(ENV["RM_MODEL_PORT"]),
                     os.path.join(WORK, "model-server.log"))
proxy = Proxy(int(ENV["RM_PROXY_PORT"]), int(ENV["RM_MODEL_PORT"]), int(ENV["RM_CONTROL_PORT"]),
              os.path.join(WORK, "proxy.log"))
mesh = Mesh(int(ENV["RM_HTTP_PORT"]), ENV["RM_TOKEN"])
state = {}


def say(text):
    print("realmodel: " + text, flush=True)


def new_exchanges(before):
    return proxy.exchanges()[before:]


def streamed(seen):
    """The partialContent values of the progress events, in order, non-empty."""
    return [d["partialContent"] for _, e, d in seen
            if e == "regeneration_progress" and d.get("partialContent")]


def first_partial(events, task_id):
    while True:
        _, data = events.next("regeneration_progress", task_id, 120)
        if data.get("partialContent"):
            return data


def setup():
    server.start()
    proxy.start()
    data = mesh.start_session(SESSION, "Write a short poem about the sea.")
    state.update(user=data["user_message_id"], assistant=data["assistant_message_id"])
    wait_for("the first answer", lambda: mesh.task(data["task_id"])["status"]
             in ("completed", "failed"), 120, 0.2)
    assert mesh.task(data["task_id"])["status"] == "completed", mesh.task(data["task_id"])
    state["events"] = Events(mesh.port, mesh.token, SESSION)


def test_regenerate():
    before = len(proxy.exchanges())
    task = mesh.regenerate(state["assistant"])
    seen = state["events"].until_end(task, 120)
    name, data = seen[-1][1], seen[-1][2]
    assert name == "message_regenerated", seen[-1]
    content = data["content"]
    assert content.strip(), "empty answer"
    parts = streamed(seen)
    assert len(parts) >= 2, "the answer did not stream: %d progress events with text" % len(parts)
    for part in parts:
        assert content.startswith(part), "partialContent %r is not a prefix of the answer" % part
    message = mesh.message(SESSION, state["assistant"])
    assert message["content"] == content
    exchange = new_exchanges(before)[-1]
    assert exchange["status"] == 200 and exchange["done"], exchange
    assert 0 < exchange["content_chunks"] <= MAX_TOKENS, exchange
    body = exchange["request"]
    assert body["max_tokens"] == MAX_TOKENS and body["stream_options"]["include_usage"] is True, body
    assert body["messages"][-1] == {"role": "user", "content": "Write a short poem about the sea."}
    #  Usage is stored as the server reported it, and never made up: the
    #  llama-cpp-python server ignores stream_options and sends none.
    usage = message["metadata"].get("usage")
    if exchange["usage"]:
        reported = exchange["usage"][-1]
        assert usage == {"prompt_tokens": reported["prompt_tokens"],
                         "completion_tokens": reported["completion_tokens"]}, (usage, reported)
    else:
        assert usage is None, usage
    say("regenerate: %d chars in %d progress steps, usage %s" % (len(content), len(parts), usage))


def test_edit():
    before = len(proxy.exchanges())
    question = "Write a short poem about the mountains."
    answer = mesh.call("PUT", "/api/messages/" + state["user"],
                       {"content": question, "trigger_regeneration": True})
    task = answer["data"]["regeneration_task_id"]
    assert task, answer
    seen = state["events"].until_end(task, 120)
    assert seen[-1][1] == "message_regenerated", seen[-1]
    assert mesh.message(SESSION, state["user"])["content"] == question
    assert mesh.message(SESSION, state["assistant"])["content"] == seen[-1][2]["content"]
    body = new_exchanges(before)[-1]["request"]
    assert body["messages"][-1] == {"role": "user", "content": question}, body["messages"]
    say("edit: the new question was asked and answered")


def test_cancel():
    kept = mesh.message(SESSION, state["assistant"])["content"]
    before = len(proxy.exchanges())
    task = mesh.regenerate(state["assistant"])
    first_partial(state["events"], task)
    status = mesh.call("POST", "/api/messages/tasks/%s/cancel" % task)
    cancelled = time.monotonic()  # CLOCK_MONOTONIC, the proxy's clock too
    assert status["status"] == "failed" and status["error_message"] == "cancelled", status
    seen = state["events"].until_end(task, 30)
    assert seen[-1][1] == "regeneration_error" and seen[-1][2]["error"] == "cancelled", seen[-1]

    def dropped():
        done = [x for x in new_exchanges(before) if "ended_s" in x]
        return done and done[-1]
    exchange = wait_for("the regenerator to drop the model connection", dropped, 15)
    assert exchange["closed_by"] == "client" and not exchange["done"], exchange
    assert exchange["ended_s"] - cancelled < 2.0, "the connection outlived the cancel by %.1f s" % (
        exchange["ended_s"] - cancelled)
    message = mesh.message(SESSION, state["assistant"])
    assert message["content"] == kept and not message["metadata"]["regenerating"], message
    say("cancel: stopped mid-answer, connection dropped %.0f ms after the cancel reply"
        % ((exchange["ended_s"] - cancelled) * 1000))


def test_429():
    before = len(proxy.exchanges())
    proxy.fail_429(2, 1)
    task = mesh.regenerate(state["assistant"])
    seen = state["events"].until_end(task, 120)
    assert seen[-1][1] == "message_regenerated", seen[-1]
    tries = new_exchanges(before)
    assert [x["status"] for x in tries] == [429, 429, 200], tries
    gaps = [tries[i + 1]["started_s"] - tries[i]["ended_s"] for i in range(2)]
    assert min(gaps) >= 0.9, "Retry-After: 1 not honoured, gaps %s" % gaps
    say("429: two refusals retried after %.2f s and %.2f s, then answered" % tuple(gaps))


def test_kill():
    task = mesh.regenerate(state["assistant"])
    first_partial(state["events"], task)
    killed = time.monotonic()
    server.kill()
    proxy.kill()
    seen = state["events"].until_end(task, 90)
    took = time.monotonic() - killed
    name, data = seen[-1][1], seen[-1][2]
    assert name == "regeneration_error", seen[-1]
    assert data["error"] == "openai: Couldn't connect to server", data
    status = mesh.task(task)
    assert status["status"] == "failed" and status["error_message"] == data["error"], status
    assert not mesh.message(SESSION, state["assistant"])["metadata"]["regenerating"]
    server.start()
    proxy.start()
    again = mesh.regenerate(state["assistant"])
    assert state["events"].until_end(again, 120)[-1][1] == "message_regenerated"
    say("kill: failed after %.1f s with '%s'; answered again once the server was back"
        % (took, data["error"]))


def test_max_tokens():
    with open(os.path.join(ENV["CHATMESH_DATA_DIR"], "run", "env"), "a") as env:
        env.write("export CHATMESH_OPENAI_MAX_TOKENS='%d'\n" % CUT_TOKENS)
    subprocess.run([os.path.join(ENV["RM_ROOT"], "chatmesh"), "restart", "regenerator"],
                   check=True, stdout=subprocess.DEVNULL)
    before = len(proxy.exchanges())
    task = mesh.regenerate(state["assistant"])
    seen = state["events"].until_end(task, 120)
    assert seen[-1][1] == "message_regenerated", seen[-1]
    exchange = new_exchanges(before)[-1]
    assert exchange["request"]["max_tokens"] == CUT_TOKENS, exchange["request"]
    assert "length" in exchange["finish_reasons"], exchange
    assert 0 < exchange["content_chunks"] <= CUT_TOKENS, exchange
    usage = mesh.message(SESSION, state["assistant"])["metadata"].get("usage")
    assert usage is None or usage["completion_tokens"] == CUT_TOKENS, usage
    say("max_tokens: cut after %d content chunks (finish_reason length): %r"
        % (exchange["content_chunks"], seen[-1][2]["content"]))


def main():
    passed = failed = 0
    try:
        setup()
        for test in (test_regenerate, test_edit, test_cancel, test_429, test_kill, test_max_tokens):
            started = time.monotonic()
            try:
                test()
                passed += 1
                say("ok %s (%.1f s)" % (test.__name__, time.monotonic() - started))
            except Exception:  # noqa: BLE001 - reported, counted, next test
                failed += 1
                traceback.print_exc()
                say("FAILED %s" % test.__name__)
    except Exception:  # noqa: BLE001 - setup failed: nothing ran
        traceback.print_exc()
        failed += 1
    finally:
        proxy.kill()
        server.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
