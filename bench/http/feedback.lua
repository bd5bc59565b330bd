-- wrk script: POST a vote on one message, alternating up and down, as the
-- benchmark's user. MESSAGE_ID and TOKEN come from the environment.
local message_id = os.getenv("MESSAGE_ID")
local token = os.getenv("TOKEN")
local n = 0
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local kind = (n % 2 == 0) and "upvote" or "downvote"
  return wrk.format("POST", "/api/messages/" .. message_id .. "/feedback", nil,
                    '{"feedback_type": "' .. kind .. '"}')
end
done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("RESULT requests=%d seconds=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    non2xx, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
