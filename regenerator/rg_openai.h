/*  rg_openai.h: the `openai` backend, any OpenAI-compatible server.

    POST {base_url}/v1/chat/completions with stream: true (llama.cpp server,
    vLLM, Ollama, OpenAI), through libcurl's multi interface so a worker
    never blocks longer than its wait: the answer comes from
    choices[0].delta.content, reasoning (when the server sends
    reasoning_content) becomes thought_process steps, up to `data: [DONE]`.
    429 and 5xx answers and connection failures are retried with backoff
    (or the server's Retry-After) as long as no token has been received;
    later failures fail the task (retryable), so the worker never commits a
    partial answer: an answer is whole only with `data: [DONE]` or a
    finish_reason. A malformed line ends the attempt at once (not
    retryable). Connect and idle timeouts bound every attempt. The API key
    is scrubbed from any upstream error text before it is reported.       */
#ifndef RG_OPENAI_H_INCLUDED
#define RG_OPENAI_H_INCLUDED

#include "rg_backend.h"
#include "rg_prompt.h"

typedef struct {
    const char *base_url;     //  "http://127.0.0.1:8080" (no /v1)
    const char *api_key;      //  "" for none; sent as Bearer, never logged
    rg_prompt_options_t prompt; //  model choice, system prompt, budgets (copied)
    int connect_timeout_ms;
    int idle_timeout_ms;      //  no byte for this long fails the attempt
    int max_retries;          //  before the first token
} rg_openai_options_t;

//  Call once from main before any thread starts (libcurl's global init).
//  NULL on out-of-memory.
rg_backend_t *rg_openai_new (const rg_openai_options_t *options);

//  Token counts of a chunk's `usage` (the last chunk, with
//  stream_options.include_usage); -1 each when the chunk has none.
typedef struct {
    int64_t prompt_tokens, completion_tokens;
} rg_openai_usage_t;

//  One `data:` payload of the event stream. 0 with the deltas (each NULL
//  when absent; caller frees), *finished (the choice has a
//  finish_reason), *cut (may be NULL: that finish_reason is "length", the
//  server's token limit cut the answer) and *usage (may be NULL), RG_STREAM_END for "[DONE]",
//  CM_EPROTO for anything else. Exposed for tests.
int rg_openai_parse_data (const char *data, size_t len, char **content, char **reasoning,
                          char **model, bool *finished, bool *cut, rg_openai_usage_t *usage);

#endif
