# Shared by tests/compose/run and tests/netns/run (sourced, POSIX sh).
# The original integration guide's scenario against a running mesh:
# start a session, regenerate, edit with trigger_regeneration, vote, and see
# the events arrive on an SSE stream.
#
# The caller sets:
#   http            a command that behaves like curl (e.g. "curl -k" or
#                   "ip netns exec ns curl"); word-split on purpose
#   base            the gateway base URL (https://127.0.0.1:8443)
#   token           a bearer token
#   work            a scratch directory
# and gets pass/fail counting from ok/bad/check.

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND...
    desc=$1; shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}
summary() {
    printf '%s passed, %s failed\n' "$passed" "$failed"
    [ "$failed" -eq 0 ]
}

# api METHOD PATH [JSON]: prints the body; $work/status holds the HTTP status.
api() {
    method=$1 path=$2 body=${3:-}
    if [ -n "$body" ]; then
        $http -sS --max-time 15 -o "$work/body" -w '%{http_code}' -X "$method" \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data "$body" "$base$path" >"$work/status" 2>"$work/curl.err" || echo 000 >"$work/status"
    else
        $http -sS --max-time 15 -o "$work/body" -w '%{http_code}' -X "$method" \
            -H "Authorization: Bearer $token" "$base$path" >"$work/status" 2>"$work/curl.err" \
            || echo 000 >"$work/status"
    fi
    cat "$work/body" 2>/dev/null
}
# json_match JSON FILTER REGEX: the jq FILTER of JSON matches REGEX.
json_match() { printf '%s' "$1" | jq -r "$2 // empty" 2>/dev/null | grep -Eq "$3"; }
status_is() { [ "$(cat "$work/status")" = "$1" ]; }

# wait_for SECONDS COMMAND...: polls every 0.2 s until COMMAND succeeds.
wait_for() {
    limit=$(( $1 * 5 )); shift
    n=0
    until "$@" >/dev/null 2>&1; do
        n=$((n + 1))
        [ $n -lt $limit ] || return 1
        sleep 0.2
    done
}

task_status() { api GET "/api/messages/tasks/$1/status" | jq -r '.status // empty'; }
task_done() { [ "$(task_status "$1")" = completed ]; }
# wait_task TASK SECONDS: 0 when the task completed in time.
wait_task() { wait_for "$2" task_done "$1"; }

sse_has() { grep -q "^event: $1\$" "$work/sse.txt"; }

# run_scenario SESSION_ID
run_scenario() {
    sid=$1
    out=$(api POST "/api/run_sse/$sid" '{"query":"How do ZeroMQ sockets reconnect?"}')
    check "POST /api/run_sse/$sid answers 200" status_is 200
    user_id=$(printf '%s' "$out" | jq -r '.data.user_message_id // empty')
    asst_id=$(printf '%s' "$out" | jq -r '.data.assistant_message_id // empty')
    task=$(printf '%s' "$out" | jq -r '.data.task_id // empty')
    # The stream, once the session exists: it must see what the actions
    # below cause.
    $http -sS -N --max-time 120 -H 'Accept: text/event-stream' \
        "$base/api/run_sse/$sid?access_token=$token" >"$work/sse.txt" 2>"$work/sse.err" &
    sse_pid=$!
    check "SSE stream opens (connection_status)" wait_for 15 sse_has connection_status
    check "the answer is generated (task $task completed)" wait_task "$task" 60

    out=$(api POST "/api/messages/$asst_id/regenerate" '{"temperature":0.9}')
    check "regenerate answers 200" status_is 200
    task=$(printf '%s' "$out" | jq -r '.data.task_id // empty')
    check "the regeneration completes" wait_task "$task" 60

    out=$(api PUT "/api/messages/$user_id" \
        '{"content":"How do ZeroMQ sockets reconnect over CURVE?","trigger_regeneration":true}')
    check "edit with trigger_regeneration answers 200" status_is 200
    task=$(printf '%s' "$out" | jq -r '.data.regeneration_task_id // empty')
    check "the edit started a regeneration" test -n "$task"
    check "the edit's regeneration completes" wait_task "$task" 60

    out=$(api POST "/api/messages/$asst_id/feedback" '{"feedback_type":"upvote","reason":"clear"}')
    check "feedback answers 200 with a feedback id" json_match "$out" .feedback_id '^fb_'
    up=$(api GET "/api/messages/$asst_id/feedback" | jq -r '.feedback_summary.upvotes // empty')
    check "feedback summary counts the upvote" test "$up" = 1

    out=$(api GET "/api/sessions/$sid")
    check "the session holds the edited question" \
        test "$(printf '%s' "$out" | jq -r '.session.messages[0].content')" = \
             "How do ZeroMQ sockets reconnect over CURVE?"

    for ev in message_regenerating regeneration_progress message_regenerated message_edited \
              feedback_submitted; do
        check "SSE delivered $ev" wait_for 15 sse_has "$ev"
    done
    kill "$sse_pid" 2>/dev/null || true
    wait "$sse_pid" 2>/dev/null || true
}
