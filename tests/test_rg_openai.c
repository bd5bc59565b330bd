/*  test_rg_openai: the openai backend against a mock OpenAI-compatible
    server started by the test on 127.0.0.1 (random port, no real model).
    The server plays one script per connection: raw HTTP bytes with two
    markers, PAUSE (a 150 ms gap, so chunks really arrive apart) and HOLD
    (keep the connection open and silent until the client lets go).
    Covered: streamed content in order, reasoning -> thought events, the
    request (messages up to the prompting user message, model, temperature,
    bearer key, max_tokens, stream_options, the system prompt), usage, a
    malformed chunk, a disconnect mid-stream, the idle timeout, 429 then
    success with backoff, the key kept out of the logs.                    */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_log.h"
#include "cm_time.h"
#include "rg_openai.h"
#include "rg_worker.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAUSE "\x01"
#define HOLD "\x02"
#define MAX_CONNS 8
#define API_KEY "sk-test-5ecret-key"

typedef struct {
    int listener;
    int port;
    const char **responses; //  one script per connection, NULL-terminated
    char requests[MAX_CONNS][8192];
    int64_t accepted_ms[MAX_CONNS];
    //  Counted at accept(): when the worker returns, every connection it
    //  made was accepted, so this is exact (a count after close() would race
    //  the worker seeing EOF).
    atomic_int accepted;
    atomic_bool stop;
    pthread_t thread;
} s_server_t;

static void
s_read_request (int fd, char *request, size_t size)
{
    //  The headers, then Content-Length bytes of body.
    size_t len = 0, want = 0;
    while (len < size - 1) {
        ssize_t n = read (fd, request + len, size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t) n;
        request[len] = '\0';
        char *end = strstr (request, "\r\n\r\n");
        if (end && !want) {
            char *cl = strcasestr (request, "Content-Length:");
            want = (size_t) (end + 4 - request) + (cl ? strtoul (cl + 15, NULL, 10) : 0);
        }
        if (want && len >= want)
            break;
    }
}

//  Holds the connection until the client closes it (or the test ends).
static void
s_hold (s_server_t *server, int fd)
{
    for (int waited = 0; waited < 20000 && !atomic_load (&server->stop); waited += 50) {
        struct pollfd item = {fd, POLLIN, 0};
        if (poll (&item, 1, 50) > 0) {
            char byte[256];
            if (read (fd, byte, sizeof byte) <= 0)
                return;
        }
    }
}

static void *
s_serve (void *arg)
{
    s_server_t *server = arg;
    int index = 0;
    for (const char **script = server->responses; *script && index < MAX_CONNS; script++) {
        int fd = -1;
        while (fd < 0 && !atomic_load (&server->stop)) {
            struct pollfd item = {server->listener, POLLIN, 0};
            if (poll (&item, 1, 50) > 0)
                fd = accept (server->listener, NULL, NULL);
        }
        if (fd < 0)
            break;
        atomic_fetch_add (&server->accepted, 1);
        server->accepted_ms[index] = cm_mono_ms ();
        s_read_request (fd, server->requests[index], sizeof server->requests[index]);
        for (const char *p = *script; *p;) {
            size_t run = strcspn (p, PAUSE HOLD);
            if (run && write (fd, p, run) < 0)
                break;
            p += run;
            if (*p == PAUSE[0]) {
                usleep (150 * 1000);
                p++;
            }
            else if (*p == HOLD[0]) {
                s_hold (server, fd);
                p++;
            }
        }
        close (fd);
        index++;
    }
    return NULL;
}

static void
s_server_start (s_server_t *server, const char **responses)
{
    memset (server, 0, sizeof *server);
    server->responses = responses;
    atomic_init (&server->accepted, 0);
    atomic_init (&server->stop, false);
    server->listener = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert_int_equal (bind (server->listener, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal (listen (server->listener, 4), 0);
    socklen_t size = sizeof addr;
    getsockname (server->listener, (struct sockaddr *) &addr, &size);
    server->port = ntohs (addr.sin_port);
    pthread_create (&server->thread, NULL, s_serve, server);
}

static void
s_server_stop (s_server_t *server)
{
    atomic_store (&server->stop, true);
    pthread_join (server->thread, NULL);
    close (server->listener);
}

//  A conversation of three turns; the last user turn prompts the answer.
static rg_task_t *
s_task (const char *model, const char *context)
{
    cm_value_t *map = cm_map_new ();
    cm_map_set_str (map, "task_id", "regen_oa");
    cm_map_set_str (map, "kind", "regenerate");
    cm_map_set_str (map, "message_id", "msg_1_s_assistant");
    cm_map_set_str (map, "session_id", "s");
    cm_map_set_str (map, "user_query", "And in French?");
    cm_map_set_str (map, "model", model);
    cm_map_set_str (map, "context", context);
    cm_map_set_dbl (map, "temperature", 0.25);
    cm_map_set_int (map, "lease_ms", 30000);
    const char *turns[][2] = {{"user", "Say hello"},
                              {"assistant", "Hello!"},
                              {"user", "And in French?"}};
    cm_value_t *conversation = cm_arr_new ();
    for (size_t i = 0; i < 3; i++) {
        cm_value_t *turn = cm_map_new ();
        cm_map_set_str (turn, "role", turns[i][0]);
        cm_map_set_str (turn, "content", turns[i][1]);
        cm_arr_push (conversation, turn);
    }
    cm_map_set (map, "conversation", conversation);
    rg_task_t *task = NULL;
    assert_int_equal (rg_task_parse (map, &task), 0);
    cm_value_destroy (&map);
    return task;
}

static rg_backend_t *
s_backend (int port, const char *model, int retries, int idle_ms)
{
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", port);
    rg_openai_options_t options = {url, API_KEY, {model, "", "", 0, 0}, 2000, idle_ms, retries};
    rg_backend_t *backend = rg_openai_new (&options);
    assert_non_null (backend);
    return backend;
}

//  Pulls a stream to its end: the answer text and the chunk kinds.
static int
s_drain (rg_stream_t *stream, char *text, size_t size, int *kinds, int *count)
{
    rg_chunk_t chunk;
    int rc;
    text[0] = '\0';
    *count = 0;
    while ((rc = rg_stream_next (stream, 100, &chunk)) >= 0 && rc != RG_STREAM_END) {
        if (rc != 0)
            continue;
        if (*count < 16)
            kinds[(*count)++] = chunk.kind;
        if (chunk.kind == RG_CHUNK_TOKEN)
            strncat (text, chunk.text, size - strlen (text) - 1);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  A fake store for runs through rg_worker_run: records every call.

typedef struct {
    cm_envelope_t *calls[256];
    size_t count;
} s_store_t;

static int
s_fake_call (void *ctx, cm_envelope_t *request, cm_envelope_t **reply)
{
    s_store_t *store = ctx;
    assert_true (store->count < 256);
    assert_int_equal (cm_msg_validate (request->type, request->payload, NULL, 0), 0);
    cm_envelope_t *copy = cm_envelope_new (request->type, request->request_id);
    cm_value_destroy (&copy->payload);
    copy->payload = cm_value_dup (request->payload);
    store->calls[store->count++] = copy;
    *reply = cm_envelope_reply_ok (request, NULL);
    return 0;
}

static size_t
s_count (const s_store_t *store, cm_msg_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < store->count; i++)
        n += store->calls[i]->type == type;
    return n;
}

static const cm_envelope_t *
s_last (const s_store_t *store, cm_msg_t type)
{
    for (size_t i = store->count; i-- > 0;)
        if (store->calls[i]->type == type)
            return store->calls[i];
    return NULL;
}

static void
s_store_free (s_store_t *store)
{
    for (size_t i = 0; i < store->count; i++)
        cm_envelope_destroy (&store->calls[i]);
}

static rg_outcome_t
s_run_worker (rg_backend_t *backend, const rg_task_t *task, s_store_t *store)
{
    rg_worker_options_t options = {"rg-test-oa", true, 50, 20000, 20};
    atomic_bool shutdown = false;
    return rg_worker_run (&options, backend, task, s_fake_call, store, &shutdown);
}

//  --------------------------------------------------------------------------

#define HEAD_200 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
#define CHUNK(json) "data: " json "\n\n"
#define CONTENT(text) CHUNK ("{\"choices\":[{\"delta\":{\"content\":\"" text "\"}}]}")

#define SSE_OK                                                                             \
    HEAD_200 ": keepalive\n\n"                                                             \
    "data: {\"model\":\"m-up\",\"choices\":[{\"delta\":{\"reasoning_content\":\"Greet "   \
    "the user.\\n\\n\"}}]}\n\n" PAUSE                                                      \
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"                     \
    "data: {\"choices\":[{\"delta\":{\"content\":\"Bon\"}}]}\r\n\r\n" PAUSE              \
    CONTENT ("jour") PAUSE CONTENT (" à") CONTENT (" tous") PAUSE "data: [DONE]\n\n"
#define HTTP_503                                                                           \
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
#define HTTP_500                                                                           \
    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\noops!"
#define HTTP_429                                                                           \
    "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 9\r\nConnection: close\r\n\r\nslow down"

static void
test_parse_data (void **state)
{
    (void) state;
    char *content, *reasoning, *model;
    bool finished;
    assert_int_equal (
        rg_openai_parse_data (" [DONE]", 7, &content, &reasoning, &model, &finished, NULL, NULL),
        RG_STREAM_END);
    const char *line = "{\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}";
    assert_int_equal (
        rg_openai_parse_data (line, strlen (line), &content, &reasoning, &model, &finished, NULL, NULL), 0);
    assert_string_equal (content, "Hi");
    assert_null (reasoning);
    assert_string_equal (model, "m");
    assert_false (finished);
    free (content);
    free (model);
    line = "{\"choices\":[{\"delta\":{\"reasoning_content\":\"Think\"}}]}";
    assert_int_equal (
        rg_openai_parse_data (line, strlen (line), &content, &reasoning, &model, &finished, NULL, NULL), 0);
    assert_null (content);
    assert_string_equal (reasoning, "Think");
    free (reasoning);
    line = "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}";
    assert_int_equal (
        rg_openai_parse_data (line, strlen (line), &content, &reasoning, &model, &finished, NULL, NULL), 0);
    assert_true (finished);
    bool cut = true;
    assert_int_equal (rg_openai_parse_data (line, strlen (line), &content, &reasoning, &model,
                                            &finished, &cut, NULL),
                      0);
    assert_false (cut);
    line = "{\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}";
    assert_int_equal (rg_openai_parse_data (line, strlen (line), &content, &reasoning, &model,
                                            &finished, &cut, NULL),
                      0);
    assert_true (finished && cut);
    //  The usage chunk of stream_options.include_usage: no choice, counts.
    rg_openai_usage_t usage;
    line = "{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7}}";
    assert_int_equal (rg_openai_parse_data (line, strlen (line), &content, &reasoning, &model,
                                            &finished, NULL, &usage),
                      0);
    assert_int_equal (usage.prompt_tokens, 12);
    assert_int_equal (usage.completion_tokens, 7);
    assert_null (content);
    assert_int_equal (rg_openai_parse_data ("{nope", 5, &content, &reasoning, &model, &finished, NULL, NULL),
                      CM_EPROTO);
}

//  Usage example: a 503, then a streamed answer with reasoning, pulled
//  chunk by chunk; the request carries the conversation as `messages`.
static void
test_retry_then_stream (void **state)
{
    (void) state;
    const char *responses[] = {HTTP_503, SSE_OK, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    //  No model configured: the task's model is asked for.
    rg_backend_t *backend = s_backend (server.port, "", 2, 5000);
    assert_string_equal (rg_backend_name (backend), "openai");
    rg_task_t *task = s_task ("m-task", "Be brief");
    rg_open_options_t options = {.thoughts = true};
    rg_stream_t *stream = NULL;
    char why[256], text[256];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    int kinds[16], count;
    assert_int_equal (s_drain (stream, text, sizeof text, kinds, &count), RG_STREAM_END);
    assert_int_equal (count, 7);
    assert_int_equal (kinds[0], RG_CHUNK_THINK_START);
    assert_int_equal (kinds[1], RG_CHUNK_THINK_STEP);
    assert_int_equal (kinds[2], RG_CHUNK_THINK_DONE);
    for (int i = 3; i < 7; i++)
        assert_int_equal (kinds[i], RG_CHUNK_TOKEN);
    assert_string_equal (text, "Bonjour à tous"); //  in order, UTF-8 intact
    assert_string_equal (rg_stream_model (stream), "m-up");
    assert_int_equal (atomic_load (&server.accepted), 2);

    //  The request: POST, streaming, the bearer key, the task's model and
    //  temperature, the context as a system message, then the conversation
    //  in order up to and including the prompting user message.
    const char *request = server.requests[1];
    assert_non_null (strstr (request, "POST /v1/chat/completions"));
    assert_non_null (strstr (request, "Authorization: Bearer " API_KEY "\r\n"));
    const char *body_text = strstr (request, "\r\n\r\n");
    assert_non_null (body_text);
    json_t *body = json_loads (body_text + 4, 0, NULL);
    assert_non_null (body);
    assert_true (json_is_true (json_object_get (body, "stream")));
    assert_string_equal (json_string_value (json_object_get (body, "model")), "m-task");
    double temperature = json_number_value (json_object_get (body, "temperature"));
    assert_true (temperature > 0.249 && temperature < 0.251);
    json_t *messages = json_object_get (body, "messages");
    const char *expect[][2] = {{"system", "Be brief"},
                               {"user", "Say hello"},
                               {"assistant", "Hello!"},
                               {"user", "And in French?"}};
    assert_int_equal (json_array_size (messages), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *turn = json_array_get (messages, i);
        assert_string_equal (json_string_value (json_object_get (turn, "role")), expect[i][0]);
        assert_string_equal (json_string_value (json_object_get (turn, "content")),
                             expect[i][1]);
    }
    json_decref (body);
    rg_stream_destroy (&stream);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

//  The settings reach the wire: max_tokens when configured (absent when
//  0), stream_options.include_usage always, the system prompt before the
//  request's context; the final usage chunk is the stream's usage.
#define SSE_USAGE                                                                          \
    HEAD_200 CONTENT ("Salut")                                                             \
    CHUNK ("{\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}")                 \
    CHUNK ("{\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":48}}")  \
    "data: [DONE]\n\n"

static json_t *
s_request_body (const char *request)
{
    const char *body_text = strstr (request, "\r\n\r\n");
    assert_non_null (body_text);
    json_t *body = json_loads (body_text + 4, 0, NULL);
    assert_non_null (body);
    return body;
}

static void
test_request_limits_and_usage (void **state)
{
    (void) state;
    const char *responses[] = {SSE_USAGE, SSE_USAGE, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d", server.port);
    for (int round = 0; round < 2; round++) {
        int64_t max_tokens = round == 0 ? 48 : 0;
        rg_openai_options_t options = {url, "", {"m-local", "", "You are terse.", 0, max_tokens},
                                       2000, 5000, 0};
        rg_backend_t *backend = rg_openai_new (&options);
        assert_non_null (backend);
        rg_task_t *task = s_task ("", "Be brief");
        rg_open_options_t open_options = {.thoughts = true};
        rg_stream_t *stream = NULL;
        char why[256], text[256];
        bool retryable;
        assert_int_equal (
            rg_backend_open (backend, task, &open_options, &stream, why, sizeof why, &retryable),
            0);
        int kinds[16], count;
        assert_int_equal (s_drain (stream, text, sizeof text, kinds, &count), RG_STREAM_END);
        assert_string_equal (text, "Salut");
        int64_t prompt_tokens = 0, completion_tokens = 0;
        assert_true (rg_stream_usage (stream, &prompt_tokens, &completion_tokens));
        assert_int_equal (prompt_tokens, 21);
        assert_int_equal (completion_tokens, 48);

        json_t *body = s_request_body (server.requests[round]);
        json_t *limit = json_object_get (body, "max_tokens");
        if (max_tokens)
            assert_int_equal (json_integer_value (limit), 48);
        else
            assert_null (limit);
        assert_true (json_is_true (
            json_object_get (json_object_get (body, "stream_options"), "include_usage")));
        assert_true (json_is_true (json_object_get (body, "stream")));
        json_t *first = json_array_get (json_object_get (body, "messages"), 0);
        assert_string_equal (json_string_value (json_object_get (first, "role")), "system");
        assert_string_equal (json_string_value (json_object_get (first, "content")),
                             "You are terse.\n\nBe brief");
        json_decref (body);
        rg_stream_destroy (&stream);
        rg_backend_destroy (&backend);
        rg_task_destroy (&task);
    }
    s_server_stop (&server);
}

//  Through the worker: reasoning becomes thought_process_* events, the
//  answer is committed whole, with the upstream's model name.
static void
test_worker_commits_streamed_answer (void **state)
{
    (void) state;
    const char *responses[] = {SSE_OK, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, "m-local", 0, 5000);
    rg_task_t *task = s_task ("", "");
    s_store_t store = {0};
    assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_COMPLETED);
    const char *events[3] = {NULL};
    size_t n = 0;
    for (size_t i = 0; i < store.count && n < 3; i++)
        if (store.calls[i]->type == CM_MSG_TASK_EVENT)
            events[n++] = cm_map_str (store.calls[i]->payload, "event");
    assert_int_equal (n, 3);
    assert_string_equal (events[0], "thought_process_start");
    assert_string_equal (events[1], "thought_process_step");
    assert_string_equal (events[2], "thought_process_complete");
    const cm_envelope_t *complete = s_last (&store, CM_MSG_TASK_COMPLETE);
    assert_non_null (complete);
    assert_string_equal (cm_map_str (complete->payload, "content"), "Bonjour à tous");
    assert_string_equal (cm_map_str (complete->payload, "model"), "m-up");
    //  The chunks came 150 ms apart (interval 50 ms): partial text grew.
    assert_true (s_count (&store, CM_MSG_TASK_PROGRESS) >= 3);
    assert_true (strstr (server.requests[0], "\"model\":\"m-local\"") != NULL);
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

//  A takeover through the worker: the request ends with the answer so far
//  as an assistant turn (the server continues it), what the server sends
//  is appended, every checkpoint extends the partial, and the reasoning the
//  server still sends is not published again (the first lease did).
static void
test_worker_continues_partial (void **state)
{
    (void) state;
    const char *responses[] = {SSE_OK, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, "m-local", 0, 5000);
    rg_task_t *task = s_task ("", "");
    free (task->partial);
    task->partial = strdup ("Salut ! ");
    s_store_t store = {0};
    assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_COMPLETED);
    const char *body_text = strstr (server.requests[0], "\r\n\r\n");
    assert_non_null (body_text);
    json_t *body = json_loads (body_text + 4, 0, NULL);
    json_t *messages = json_object_get (body, "messages");
    assert_int_equal (json_array_size (messages), 4);
    json_t *last = json_array_get (messages, 3);
    assert_string_equal (json_string_value (json_object_get (last, "role")), "assistant");
    assert_string_equal (json_string_value (json_object_get (last, "content")), "Salut ! ");
    json_decref (body);
    assert_int_equal (s_count (&store, CM_MSG_TASK_EVENT), 0);
    for (size_t i = 0; i < store.count; i++)
        if (store.calls[i]->type == CM_MSG_TASK_PROGRESS)
            assert_memory_equal (cm_map_str (store.calls[i]->payload, "partial"), "Salut ! ", 8);
    assert_string_equal (cm_map_str (s_last (&store, CM_MSG_TASK_COMPLETE)->payload, "content"),
                         "Salut ! Bonjour à tous");
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

//  A continue task (kind continue, its text so far as partial): the request
//  ends with that text as an assistant turn; a stream the server's token
//  limit cut (finish_reason "length") completes with finish_reason
//  "length", so the store marks the answer as one to continue again. The
//  finish_reason "stop" of a whole answer sends none.
#define SSE_LENGTH                                                                         \
    HEAD_200 CONTENT ("and more") PAUSE                                                    \
    CHUNK ("{\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}") "data: [DONE]\n\n"

static void
test_worker_continue_cut_by_length (void **state)
{
    (void) state;
    const char *responses[] = {SSE_LENGTH, SSE_OK, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, "m-local", 0, 5000);
    rg_task_t *task = s_task ("", "");
    free (task->kind);
    task->kind = strdup ("continue");
    free (task->partial);
    task->partial = strdup ("Some text ");
    s_store_t store = {0};
    assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_COMPLETED);
    const char *body_text = strstr (server.requests[0], "\r\n\r\n");
    assert_non_null (body_text);
    json_t *body = json_loads (body_text + 4, 0, NULL);
    json_t *messages = json_object_get (body, "messages");
    json_t *last = json_array_get (messages, json_array_size (messages) - 1);
    assert_string_equal (json_string_value (json_object_get (last, "role")), "assistant");
    assert_string_equal (json_string_value (json_object_get (last, "content")), "Some text ");
    json_decref (body);
    const cm_envelope_t *complete = s_last (&store, CM_MSG_TASK_COMPLETE);
    assert_string_equal (cm_map_str (complete->payload, "content"), "Some text and more");
    assert_string_equal (cm_map_str (complete->payload, "finish_reason"), "length");
    s_store_free (&store);
    //  The next answer ends whole: no finish_reason.
    store = (s_store_t) {0};
    assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_COMPLETED);
    assert_null (cm_map_get (s_last (&store, CM_MSG_TASK_COMPLETE)->payload, "finish_reason"));
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

//  Reasoning in the content between <think> tags, the tags cut across
//  chunks: thought events, and an answer without any of it.
#define SSE_THINK                                                                          \
    HEAD_200 CONTENT ("<thi") PAUSE CONTENT ("nk>\\nCount the") CONTENT (" letters.</th")   \
    PAUSE CONTENT ("ink>\\n\\nThree") CONTENT (" <b>letters</b>") "data: [DONE]\n\n"

static void
test_think_blocks_in_content (void **state)
{
    (void) state;
    const char *responses[] = {SSE_THINK, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, "m-local", 0, 5000);
    rg_task_t *task = s_task ("", "");
    s_store_t store = {0};
    assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_COMPLETED);
    const char *events[4] = {NULL};
    const char *step = NULL;
    size_t n = 0;
    for (size_t i = 0; i < store.count && n < 4; i++)
        if (store.calls[i]->type == CM_MSG_TASK_EVENT) {
            events[n++] = cm_map_str (store.calls[i]->payload, "event");
            const cm_value_t *data = cm_map_get (store.calls[i]->payload, "data");
            if (cm_map_str (data, "reasoning"))
                step = cm_map_str (data, "reasoning");
        }
    assert_int_equal (n, 3);
    assert_string_equal (events[0], "thought_process_start");
    assert_string_equal (events[1], "thought_process_step");
    assert_string_equal (events[2], "thought_process_complete");
    assert_string_equal (step, "Count the letters.");
    const cm_envelope_t *complete = s_last (&store, CM_MSG_TASK_COMPLETE);
    assert_non_null (complete);
    assert_string_equal (cm_map_str (complete->payload, "content"), "Three <b>letters</b>");
    //  No partial answer ever showed reasoning or a piece of a tag.
    for (size_t i = 0; i < store.count; i++) {
        const char *partial = cm_map_str (store.calls[i]->payload, "partial");
        if (partial) {
            assert_null (strstr (partial, "<th"));
            assert_null (strstr (partial, "Count"));
        }
    }
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

static void
test_errors_after_retries (void **state)
{
    (void) state;
    const char *responses[] = {HTTP_500, HTTP_500, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, "m", 1, 5000);
    rg_task_t *task = s_task ("", "");
    rg_open_options_t options = {.thoughts = false};
    rg_stream_t *stream = NULL;
    char why[256], text[64];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    int kinds[16], count;
    assert_int_equal (s_drain (stream, text, sizeof text, kinds, &count), CM_EBACKEND);
    const char *error = rg_stream_error (stream, &retryable);
    assert_non_null (strstr (error, "HTTP 500"));
    assert_true (retryable);
    assert_int_equal (atomic_load (&server.accepted), 2);
    rg_stream_destroy (&stream);
    rg_backend_destroy (&backend);
    s_server_stop (&server);

    //  Nobody listening: a connection error, retryable.
    backend = s_backend (server.port, "m", 0, 5000);
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    assert_int_equal (s_drain (stream, text, sizeof text, kinds, &count), CM_EBACKEND);
    rg_stream_error (stream, &retryable);
    assert_true (retryable);
    rg_stream_destroy (&stream);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

//  429 before the first token: retried after the backoff (500 ms for the
//  first retry), then the answer streams.
static void
test_429_then_success (void **state)
{
    (void) state;
    const char *responses[] = {HTTP_429, SSE_OK, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, "m", 3, 5000);
    rg_task_t *task = s_task ("", "");
    s_store_t store = {0};
    assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_COMPLETED);
    assert_int_equal (atomic_load (&server.accepted), 2);
    int64_t gap = server.accepted_ms[1] - server.accepted_ms[0];
    assert_true (gap >= 450);
    assert_true (gap < 3000);
    assert_string_equal (cm_map_str (s_last (&store, CM_MSG_TASK_COMPLETE)->payload, "content"),
                         "Bonjour à tous");
    assert_int_equal (s_count (&store, CM_MSG_TASK_FAIL), 0);
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

//  A chunk that is not JSON: a clear error at once (the server's HOLD is
//  not waited out), not retryable, nothing committed.
static void
test_malformed_chunk (void **state)
{
    (void) state;
    const char *responses[] = {HEAD_200 CONTENT ("Partial") "data: {\"choices\": [oops\n\n" HOLD,
                               NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, "m", 3, 5000);
    rg_task_t *task = s_task ("", "");
    s_store_t store = {0};
    int64_t start = cm_mono_ms ();
    assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_FAILED);
    assert_true (cm_mono_ms () - start < 2000);
    const cm_envelope_t *fail = s_last (&store, CM_MSG_TASK_FAIL);
    assert_non_null (fail);
    assert_non_null (strstr (cm_map_str (fail->payload, "error"), "malformed"));
    assert_false (cm_map_bool (fail->payload, "retryable", true));
    assert_int_equal (s_count (&store, CM_MSG_TASK_COMPLETE), 0);
    assert_int_equal (atomic_load (&server.accepted), 1);
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

//  The server goes away after part of the answer. Design: the attempt
//  fails retryable (no in-backend retry once a token arrived, since the
//  model would start over), the worker sends task_fail {retryable: true}
//  so the store requeues the task for a fresh attempt, and the partial
//  text is never sent as task_complete nor as a 100% progress.
static void
test_disconnect_mid_stream (void **state)
{
    (void) state;
    const char *scripts[] = {
        //  close-delimited body: EOF looks like a normal end to HTTP
        HEAD_200 CONTENT ("Half an") PAUSE CONTENT (" answer"),
        //  chunked body cut inside a chunk: a transfer error
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
        "chunked\r\n\r\n32\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Half\"}}]}\n\n\r\n"
        "40\r\ndata: {\"choi",
    };
    for (int i = 0; i < 2; i++) {
        const char *responses[] = {scripts[i], NULL};
        s_server_t server;
        s_server_start (&server, responses);
        rg_backend_t *backend = s_backend (server.port, "m", 3, 5000);
        rg_task_t *task = s_task ("", "");
        s_store_t store = {0};
        assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_FAILED);
        const cm_envelope_t *fail = s_last (&store, CM_MSG_TASK_FAIL);
        assert_non_null (fail);
        assert_true (cm_map_bool (fail->payload, "retryable", false));
        if (i == 0)
            assert_non_null (strstr (cm_map_str (fail->payload, "error"), "ended before"));
        assert_int_equal (s_count (&store, CM_MSG_TASK_COMPLETE), 0);
        for (size_t c = 0; c < store.count; c++)
            if (store.calls[c]->type == CM_MSG_TASK_PROGRESS)
                assert_true (cm_map_int (store.calls[c]->payload, "progress", 0) < 100);
        assert_int_equal (atomic_load (&server.accepted), 1); //  no retry after a token
        s_store_free (&store);
        rg_backend_destroy (&backend);
        rg_task_destroy (&task);
        s_server_stop (&server);
    }
}

//  A server that sends a token and then nothing: the idle timeout (400 ms
//  here) ends the attempt with a clear, retryable error.
static void
test_idle_timeout (void **state)
{
    (void) state;
    const char *responses[] = {HEAD_200 CONTENT ("Thinking about") HOLD, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, "m", 3, 400);
    rg_task_t *task = s_task ("", "");
    s_store_t store = {0};
    int64_t start = cm_mono_ms ();
    assert_int_equal (s_run_worker (backend, task, &store), RG_OUTCOME_FAILED);
    int64_t elapsed = cm_mono_ms () - start;
    assert_true (elapsed >= 380);
    assert_true (elapsed < 2500);
    const cm_envelope_t *fail = s_last (&store, CM_MSG_TASK_FAIL);
    assert_non_null (fail);
    assert_non_null (strstr (cm_map_str (fail->payload, "error"), "idle timeout"));
    assert_true (cm_map_bool (fail->payload, "retryable", false));
    assert_int_equal (s_count (&store, CM_MSG_TASK_COMPLETE), 0);
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

//  The key goes to the server as a bearer token and nowhere else: not in
//  the log (at debug level), not in the error sent to the store, even when
//  the server's error pages quote it back.
static void
test_api_key_never_logged (void **state)
{
    (void) state;
    const char *responses[] = {
        "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 28\r\nConnection: close\r\n\r\n"
        "slow down " API_KEY,
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 30\r\nConnection: close\r\n\r\n"
        "bad key: " API_KEY "!!!",
        NULL};
    s_server_t server;
    s_server_start (&server, responses);
    char log_path[] = "/tmp/rg-openai-log-XXXXXX";
    int log_fd = mkstemp (log_path);
    assert_true (log_fd >= 0);
    fflush (stderr);
    int saved = dup (STDERR_FILENO);
    dup2 (log_fd, STDERR_FILENO);
    cm_log_init ("test_rg_openai", CM_LOG_DEBUG);

    rg_backend_t *backend = s_backend (server.port, "m", 3, 5000);
    rg_task_t *task = s_task ("", "");
    s_store_t store = {0};
    rg_outcome_t outcome = s_run_worker (backend, task, &store);

    fflush (stderr);
    dup2 (saved, STDERR_FILENO);
    close (saved);
    cm_log_init ("test_rg_openai", CM_LOG_NOTICE);
    FILE *file = fdopen (log_fd, "r");
    fseek (file, 0, SEEK_SET);
    char log[16384];
    size_t len = fread (log, 1, sizeof log - 1, file);
    log[len] = '\0';
    fclose (file);
    unlink (log_path);

    assert_int_equal (outcome, RG_OUTCOME_FAILED);
    assert_int_equal (atomic_load (&server.accepted), 2);
    for (int i = 0; i < 2; i++)
        assert_non_null (strstr (server.requests[i], "Authorization: Bearer " API_KEY));
    assert_non_null (strstr (log, "HTTP 429")); //  the log did get the retry...
    assert_non_null (strstr (log, "***"));      //  ...with the key scrubbed
    assert_null (strstr (log, API_KEY));
    const cm_envelope_t *fail = s_last (&store, CM_MSG_TASK_FAIL);
    assert_non_null (fail);
    assert_non_null (strstr (cm_map_str (fail->payload, "error"), "HTTP 401"));
    assert_null (strstr (cm_map_str (fail->payload, "error"), API_KEY));
    assert_false (cm_map_bool (fail->payload, "retryable", true));
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
    s_server_stop (&server);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parse_data),
        cmocka_unit_test (test_retry_then_stream),
        cmocka_unit_test (test_request_limits_and_usage),
        cmocka_unit_test (test_worker_commits_streamed_answer),
        cmocka_unit_test (test_worker_continues_partial),
        cmocka_unit_test (test_worker_continue_cut_by_length),
        cmocka_unit_test (test_think_blocks_in_content),
        cmocka_unit_test (test_errors_after_retries),
        cmocka_unit_test (test_429_then_success),
        cmocka_unit_test (test_malformed_chunk),
        cmocka_unit_test (test_disconnect_mid_stream),
        cmocka_unit_test (test_idle_timeout),
        cmocka_unit_test (test_api_key_never_logged),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
