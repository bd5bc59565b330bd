#include "rg_openai.h"
#include "cm_error.h"
#include "cm_log.h"
#include "cm_msg.h"
#include "cm_time.h"
#include "rg_think.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LINE_MAX (1024 * 1024) //  one SSE line; longer is not a sane server
#define S_STEP_BYTES 400         //  reasoning is cut into steps about this long
#define S_QUEUE_MAX 64

typedef struct {
    char *base_url;
    char *api_key;
    char *model;
    char *models;
    char *system_prompt;
    rg_prompt_options_t prompt; //  points into the strings above
    int connect_timeout_ms;
    int idle_timeout_ms;
    int max_retries;
} s_state_t;

typedef struct {
    rg_chunk_kind_t kind;
    char *text;
    int step;
} s_item_t;

typedef struct {
    const s_state_t *state;
    char *body;            //  the JSON request
    char model[CM_MODEL_MAX + 1];
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    char *line;            //  partial SSE line
    size_t line_len, line_cap;
    char error_body[256];  //  start of a non-200 answer, for the error text
    size_t error_len;
    bool done;             //  [DONE] seen
    bool finished;         //  a choice gave its finish_reason
    bool cut;              //  ... and it was "length": the token limit cut the answer
    bool bad;              //  a line could not be parsed or was too long
    bool idle;             //  the attempt was ended for silence
    int64_t last_data_ms;  //  when the current attempt last received a byte
    int attempt;
    int64_t retry_at_ms;   //  0: not waiting to retry
    bool first_token;
    rg_openai_usage_t usage; //  -1 until the server reports it
    bool thinking;         //  THINK_START sent, THINK_DONE not yet
    int steps;
    char *reasoning;       //  reasoning not yet cut into a step
    rg_think_t think;      //  <think> blocks in the content
    size_t reasoning_len;
    s_item_t queue[S_QUEUE_MAX];
    size_t head, count;
    s_item_t current;      //  the item handed out last (freed on next call)
} s_stream_t;

int
rg_openai_parse_data (const char *data, size_t len, char **content, char **reasoning,
                      char **model, bool *finished, bool *cut, rg_openai_usage_t *usage)
{
    *content = *reasoning = *model = NULL;
    *finished = false;
    if (cut)
        *cut = false;
    if (usage)
        usage->prompt_tokens = usage->completion_tokens = -1;
    while (len && (*data == ' ' || *data == '\t')) {
        data++;
        len--;
    }
    while (len && (data[len - 1] == '\r' || data[len - 1] == ' '))
        len--;
    if (len == 6 && memcmp (data, "[DONE]", 6) == 0)
        return RG_STREAM_END;
    json_error_t error;
    json_t *root = json_loadb (data, len, 0, &error);
    if (!root || !json_is_object (root)) {
        json_decref (root);
        return CM_EPROTO;
    }
    const char *name = json_string_value (json_object_get (root, "model"));
    if (name)
        *model = strdup (name);
    json_t *choice = json_array_get (json_object_get (root, "choices"), 0);
    json_t *delta = json_object_get (choice, "delta");
    const char *reason = json_string_value (json_object_get (choice, "finish_reason"));
    *finished = reason != NULL;
    if (cut)
        *cut = reason && strcmp (reason, "length") == 0;
    json_t *counts = json_object_get (root, "usage");
    json_t *prompt = json_object_get (counts, "prompt_tokens");
    json_t *completion = json_object_get (counts, "completion_tokens");
    if (usage && json_is_integer (prompt) && json_is_integer (completion)
        && json_integer_value (prompt) >= 0 && json_integer_value (completion) >= 0) {
        usage->prompt_tokens = json_integer_value (prompt);
        usage->completion_tokens = json_integer_value (completion);
    }
    const char *text = json_string_value (json_object_get (delta, "content"));
    if (text && *text)
        *content = strdup (text);
    text = json_string_value (json_object_get (delta, "reasoning_content"));
    if (!text)
        text = json_string_value (json_object_get (delta, "reasoning"));
    if (text && *text)
        *reasoning = strdup (text);
    json_decref (root);
    return 0;
}

static void
s_push (s_stream_t *stream, rg_chunk_kind_t kind, char *text, int step)
{
    if (!text)
        return;
    if (stream->count == S_QUEUE_MAX) {
        //  The worker drains faster than a server writes; if not, merge
        //  tokens into the last item rather than grow without bound.
        s_item_t *last = &stream->queue[(stream->head + stream->count - 1) % S_QUEUE_MAX];
        if (kind == RG_CHUNK_TOKEN && last->kind == RG_CHUNK_TOKEN) {
            size_t a = strlen (last->text), b = strlen (text);
            char *merged = realloc (last->text, a + b + 1);
            if (merged) {
                memcpy (merged + a, text, b + 1);
                last->text = merged;
            }
        }
        free (text);
        return;
    }
    s_item_t *item = &stream->queue[(stream->head + stream->count++) % S_QUEUE_MAX];
    item->kind = kind;
    item->text = text;
    item->step = step;
}

static void
s_flush_reasoning (s_stream_t *stream)
{
    if (!stream->reasoning_len)
        return;
    stream->reasoning[stream->reasoning_len] = '\0';
    s_push (stream, RG_CHUNK_THINK_STEP, strdup (stream->reasoning), ++stream->steps);
    stream->reasoning_len = 0;
}

static void
s_on_reasoning (s_stream_t *stream, const char *text, size_t len)
{
    if (!stream->thinking && !stream->first_token) {
        stream->thinking = true;
        s_push (stream, RG_CHUNK_THINK_START, strdup ("the question"), 0);
    }
    char *grown = realloc (stream->reasoning, stream->reasoning_len + len + 1);
    if (!grown)
        return;
    stream->reasoning = grown;
    memcpy (stream->reasoning + stream->reasoning_len, text, len);
    stream->reasoning_len += len;
    stream->reasoning[stream->reasoning_len] = '\0';
    //  A step ends at a paragraph, or at a sentence once it is long enough.
    const char *end = strstr (stream->reasoning, "\n\n");
    bool long_enough = stream->reasoning_len >= S_STEP_BYTES
                       && strchr (".!?\n", stream->reasoning[stream->reasoning_len - 1]);
    if (end || long_enough)
        s_flush_reasoning (stream);
}

//  The answer's next piece: ends the reasoning, if any, first.
static void
s_on_content (s_stream_t *stream, const char *text, size_t len)
{
    if (stream->thinking) {
        s_flush_reasoning (stream);
        s_push (stream, RG_CHUNK_THINK_DONE, strdup ("Reasoning complete"), 0);
        stream->thinking = false;
    }
    stream->first_token = true;
    s_push (stream, RG_CHUNK_TOKEN, strndup (text, len), 0);
}

static void
s_on_piece (void *arg, bool reasoning, const char *text, size_t len)
{
    if (reasoning)
        s_on_reasoning (arg, text, len);
    else
        s_on_content (arg, text, len);
}

static void
s_on_line (s_stream_t *stream, char *line, size_t len)
{
    if (len < 5 || memcmp (line, "data:", 5) != 0)
        return; //  comments, event:, id:, blank lines
    char *content, *reasoning, *model;
    bool finished, cut;
    rg_openai_usage_t usage;
    int rc = rg_openai_parse_data (line + 5, len - 5, &content, &reasoning, &model, &finished,
                                   &cut, &usage);
    if (rc == RG_STREAM_END) {
        stream->done = true;
        return;
    }
    if (rc) {
        stream->bad = true;
        return;
    }
    if (finished)
        stream->finished = true;
    if (cut)
        stream->cut = true;
    if (usage.prompt_tokens >= 0)
        stream->usage = usage;
    if (model && *model)
        snprintf (stream->model, sizeof stream->model, "%s", model);
    free (model);
    if (reasoning)
        s_on_reasoning (stream, reasoning, strlen (reasoning));
    free (reasoning);
    if (content)
        rg_think_feed (&stream->think, content, strlen (content), s_on_piece, stream);
    free (content);
}

static size_t
s_on_write (char *data, size_t size, size_t nmemb, void *arg)
{
    s_stream_t *stream = arg;
    size_t total = size * nmemb;
    stream->last_data_ms = cm_mono_ms ();
    long status = 0;
    curl_easy_getinfo (stream->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        size_t room = sizeof stream->error_body - 1 - stream->error_len;
        size_t take = total < room ? total : room;
        memcpy (stream->error_body + stream->error_len, data, take);
        stream->error_len += take;
        stream->error_body[stream->error_len] = '\0';
        return total;
    }
    for (size_t i = 0; i < total; i++) {
        if (data[i] == '\n') {
            if (stream->line_len && stream->line[stream->line_len - 1] == '\r')
                stream->line_len--;
            if (stream->line)
                stream->line[stream->line_len] = '\0';
            s_on_line (stream, stream->line ? stream->line : "", stream->line_len);
            stream->line_len = 0;
            if (stream->bad)
                return 0; //  no point reading past a line we cannot trust
            continue;
        }
        if (stream->line_len + 2 > stream->line_cap) {
            size_t cap = stream->line_cap ? stream->line_cap * 2 : 4096;
            if (cap > S_LINE_MAX) {
                stream->bad = true;
                return 0; //  aborts the transfer
            }
            char *line = realloc (stream->line, cap);
            if (!line)
                return 0;
            stream->line = line;
            stream->line_cap = cap;
        }
        stream->line[stream->line_len++] = data[i];
    }
    return total;
}

static int
s_start_attempt (s_stream_t *stream, char *why, size_t why_size)
{
    const s_state_t *state = stream->state;
    if (stream->easy) {
        curl_multi_remove_handle (stream->multi, stream->easy);
        curl_easy_cleanup (stream->easy);
    }
    stream->easy = curl_easy_init ();
    if (!stream->easy) {
        snprintf (why, why_size, "openai: cannot start a request");
        return CM_ENOMEM;
    }
    char url[1024];
    snprintf (url, sizeof url, "%s/v1/chat/completions", state->base_url);
    CURL *easy = stream->easy;
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, stream->body);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, stream->headers);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_write);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, stream);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) state->connect_timeout_ms);
    //  The idle timeout is enforced by s_next (to the millisecond; curl's
    //  low-speed limit counts whole seconds).
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    stream->last_data_ms = cm_mono_ms ();
    stream->idle = false;
    stream->finished = false;
    stream->cut = false;
    stream->line_len = 0;
    stream->error_len = 0;
    stream->error_body[0] = '\0';
    stream->done = false;
    stream->bad = false;
    rg_think_init (&stream->think);
    stream->usage.prompt_tokens = stream->usage.completion_tokens = -1;
    if (curl_multi_add_handle (stream->multi, easy) != CURLM_OK) {
        snprintf (why, why_size, "openai: cannot start a request");
        return CM_EBACKEND;
    }
    stream->attempt++;
    return 0;
}

static void
s_close (void **stream_p)
{
    s_stream_t *stream = *stream_p;
    if (!stream)
        return;
    if (stream->easy) {
        curl_multi_remove_handle (stream->multi, stream->easy);
        curl_easy_cleanup (stream->easy);
    }
    if (stream->multi)
        curl_multi_cleanup (stream->multi);
    curl_slist_free_all (stream->headers);
    for (size_t i = 0; i < stream->count; i++)
        free (stream->queue[(stream->head + i) % S_QUEUE_MAX].text);
    free (stream->current.text);
    free (stream->reasoning);
    free (stream->line);
    free (stream->body);
    free (stream);
    *stream_p = NULL;
}

static int
s_open (void *state_arg, const rg_task_t *task, const rg_open_options_t *options,
        void **stream_p, char *why, size_t why_size)
{
    (void) options; //  reasoning is forwarded when the server sends it
    const s_state_t *state = state_arg;
    char model[CM_MODEL_MAX + 1];
    int rc = rg_prompt_model (&state->prompt, task->model, model, sizeof model, why, why_size);
    if (rc)
        return rc;
    s_stream_t *stream = calloc (1, sizeof *stream);
    if (!stream) {
        snprintf (why, why_size, "out of memory");
        return CM_ENOMEM;
    }
    stream->state = state;
    snprintf (stream->model, sizeof stream->model, "%s", model);
    size_t dropped = 0;
    stream->body = rg_prompt_body (&state->prompt, task, model, &dropped);
    if (dropped)
        cm_info ("task %s: %zu oldest turns left out to fit CHATMESH_OPENAI_CONTEXT_TOKENS",
                 task->task_id, dropped);
    stream->multi = curl_multi_init ();
    stream->headers = curl_slist_append (NULL, "Content-Type: application/json");
    stream->headers = curl_slist_append (stream->headers, "Accept: text/event-stream");
    if (state->api_key[0]) {
        char header[1100];
        snprintf (header, sizeof header, "Authorization: Bearer %s", state->api_key);
        stream->headers = curl_slist_append (stream->headers, header);
    }
    rc = stream->body && stream->multi && stream->headers ? 0 : CM_ENOMEM;
    if (rc == 0)
        rc = s_start_attempt (stream, why, why_size);
    else
        snprintf (why, why_size, "out of memory");
    if (rc) {
        void *p = stream;
        s_close (&p);
        return rc;
    }
    *stream_p = stream;
    return 0;
}

//  Replaces every copy of secret in text by "***": an upstream error page
//  may quote the key it refused, and error texts end up in logs and events.
static void
s_scrub (char *text, const char *secret)
{
    size_t len = strlen (secret);
    if (len == 0)
        return;
    char *hit;
    while ((hit = strstr (text, secret))) {
        memcpy (hit, "***", 3);
        memmove (hit + 3, hit + len, strlen (hit + len) + 1);
    }
}

//  After an attempt ended: retry, end, or fail. An answer is complete only
//  with [DONE] or a finish_reason: a connection that just closes mid-answer
//  must not pass its partial text off as the whole answer.
static int
s_finished (s_stream_t *stream, CURLcode result, char *why, size_t why_size, bool *retryable)
{
    long status = 0;
    curl_easy_getinfo (stream->easy, CURLINFO_RESPONSE_CODE, &status);
    bool complete = stream->done || stream->finished;
    if (result == CURLE_OK && status == 200 && !stream->bad && !stream->idle && complete) {
        rg_think_flush (&stream->think, s_on_piece, stream);
        if (stream->thinking) { //  reasoning and then nothing: still end it
            s_flush_reasoning (stream);
            s_push (stream, RG_CHUNK_THINK_DONE, strdup ("Reasoning complete"), 0);
            stream->thinking = false;
        }
        stream->done = true;
        return 0;
    }
    bool transient;
    if (stream->idle) {
        snprintf (why, why_size, "openai: the server sent nothing for %d ms (idle timeout)",
                  stream->state->idle_timeout_ms);
        transient = true;
    }
    else if (result == CURLE_OK && status != 200) {
        //  The body of an error answer is the server's text, not ours:
        //  keep it short and on one line.
        for (char *p = stream->error_body; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        s_scrub (stream->error_body, stream->state->api_key);
        snprintf (why, why_size, "openai: HTTP %ld %.160s", status, stream->error_body);
        transient = status == 429 || status >= 500;
    }
    else if (stream->bad) {
        snprintf (why, why_size, "openai: malformed event stream");
        transient = false;
    }
    else if (result == CURLE_OK) {
        snprintf (why, why_size, "openai: the stream ended before the answer was complete");
        transient = true;
    }
    else {
        snprintf (why, why_size, "openai: %s", curl_easy_strerror (result));
        transient = result != CURLE_WRITE_ERROR;
    }
    *retryable = transient;
    if (transient && !stream->first_token && stream->attempt <= stream->state->max_retries) {
        int64_t backoff = 500LL << (stream->attempt - 1);
        backoff = backoff > 8000 ? 8000 : backoff;
        //  A server that says when to come back is believed, within reason.
        curl_off_t retry_after = 0;
        if (curl_easy_getinfo (stream->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK
            && retry_after > 0)
            backoff = retry_after > 30 ? 30000 : (int64_t) retry_after * 1000;
        cm_info ("%s; retrying in %lld ms", why, (long long) backoff);
        stream->retry_at_ms = cm_mono_ms () + backoff;
        return RG_STREAM_AGAIN;
    }
    return CM_EBACKEND;
}

static int
s_next (void *stream_arg, int wait_ms, const atomic_bool *cancelled, rg_chunk_t *chunk,
        char *why, size_t why_size, bool *retryable)
{
    s_stream_t *stream = stream_arg;
    int64_t deadline = cm_mono_ms () + wait_ms;
    free (stream->current.text);
    stream->current.text = NULL;
    while (true) {
        if (atomic_load (cancelled))
            return CM_ECANCELLED;
        if (stream->count) {
            stream->current = stream->queue[stream->head];
            stream->head = (stream->head + 1) % S_QUEUE_MAX;
            stream->count--;
            memset (chunk, 0, sizeof *chunk);
            chunk->kind = stream->current.kind;
            chunk->text = stream->current.text;
            chunk->len = strlen (chunk->text);
            chunk->step = stream->current.step;
            chunk->progress = -1;
            return 0;
        }
        if (stream->done)
            return RG_STREAM_END;
        int64_t now = cm_mono_ms ();
        if (now >= deadline)
            return RG_STREAM_AGAIN;
        if (stream->retry_at_ms) {
            if (now < stream->retry_at_ms) {
                int64_t nap = stream->retry_at_ms - now;
                if (nap > deadline - now)
                    nap = deadline - now;
                curl_multi_wait (stream->multi, NULL, 0, (int) (nap < 50 ? nap : 50), NULL);
                continue;
            }
            stream->retry_at_ms = 0;
            int rc = s_start_attempt (stream, why, why_size);
            if (rc)
                return rc;
        }
        int running = 0;
        curl_multi_perform (stream->multi, &running);
        if (running && now - stream->last_data_ms > stream->state->idle_timeout_ms) {
            //  Silent for too long: end this attempt as a failed one.
            curl_multi_remove_handle (stream->multi, stream->easy);
            stream->idle = true;
            int rc = s_finished (stream, CURLE_OPERATION_TIMEDOUT, why, why_size, retryable);
            if (rc < 0)
                return rc;
            continue;
        }
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read (stream->multi, &left)))
            if (msg->msg == CURLMSG_DONE) {
                int rc = s_finished (stream, msg->data.result, why, why_size, retryable);
                if (rc < 0)
                    return rc;
            }
        if (stream->count || stream->done || stream->retry_at_ms)
            continue;
        int64_t slice = deadline - cm_mono_ms ();
        if (slice > 0)
            curl_multi_wait (stream->multi, NULL, 0, (int) (slice < 50 ? slice : 50), NULL);
    }
}

static const char *
s_model (void *stream_arg)
{
    s_stream_t *stream = stream_arg;
    return stream->model;
}

static bool
s_usage (void *stream_arg, int64_t *prompt_tokens, int64_t *completion_tokens)
{
    s_stream_t *stream = stream_arg;
    *prompt_tokens = stream->usage.prompt_tokens;
    *completion_tokens = stream->usage.completion_tokens;
    return stream->usage.prompt_tokens >= 0;
}

static void
s_destroy (void **state_p)
{
    s_state_t *state = *state_p;
    if (!state)
        return;
    free (state->base_url);
    free (state->api_key);
    free (state->model);
    free (state->models);
    free (state->system_prompt);
    free (state);
    *state_p = NULL;
}

static const char *
s_finish_reason (void *stream_arg)
{
    const s_stream_t *stream = stream_arg;
    return stream->cut ? "length" : NULL;
}

static const rg_backend_ops_t s_ops = {"openai", s_open,    s_next,  s_model,
                                       s_close,  s_destroy, s_usage, s_finish_reason};

rg_backend_t *
rg_openai_new (const rg_openai_options_t *options)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_state_t *state = calloc (1, sizeof *state);
    if (!state)
        return NULL;
    state->base_url = strdup (options->base_url ? options->base_url : "");
    state->api_key = strdup (options->api_key ? options->api_key : "");
    const rg_prompt_options_t *prompt = &options->prompt;
    state->model = strdup (prompt->model ? prompt->model : "");
    state->models = strdup (prompt->models ? prompt->models : "");
    state->system_prompt = strdup (prompt->system_prompt ? prompt->system_prompt : "");
    state->prompt = (rg_prompt_options_t) {state->model, state->models, state->system_prompt,
                                           prompt->context_tokens, prompt->max_tokens};
    state->connect_timeout_ms = options->connect_timeout_ms > 0 ? options->connect_timeout_ms
                                                                : 10000;
    state->idle_timeout_ms = options->idle_timeout_ms > 0 ? options->idle_timeout_ms : 60000;
    state->max_retries = options->max_retries >= 0 ? options->max_retries : 3;
    void *state_p = state;
    if (!state->base_url || !state->api_key || !state->model || !state->models
        || !state->system_prompt) {
        s_destroy (&state_p);
        return NULL;
    }
    //  "http://host:port/" and "http://host:port" name the same server.
    size_t len = strlen (state->base_url);
    while (len && state->base_url[len - 1] == '/')
        state->base_url[--len] = '\0';
    return rg_backend_new (&s_ops, &state_p);
}
