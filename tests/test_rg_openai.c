/*  test_rg_openai: the openai backend against a scripted HTTP server on
    127.0.0.1 (no real model): the event-stream parser, reasoning and
    content chunks, retries before the first token, errors.               */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "rg_openai.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int listener;
    int port;
    const char **responses; //  one per connection, NULL-terminated
    char last_request[8192];
    int served;
    pthread_t thread;
} s_server_t;

static void *
s_serve (void *arg)
{
    s_server_t *server = arg;
    for (const char **response = server->responses; *response; response++) {
        int fd = accept (server->listener, NULL, NULL);
        if (fd < 0)
            break;
        //  Read the headers, then Content-Length bytes of body.
        size_t len = 0;
        char *request = server->last_request;
        size_t want = 0;
        while (len < sizeof server->last_request - 1) {
            ssize_t n = read (fd, request + len, sizeof server->last_request - 1 - len);
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
        if (write (fd, *response, strlen (*response)) < 0)
            perror ("write");
        close (fd);
        server->served++;
    }
    return NULL;
}

static void
s_server_start (s_server_t *server, const char **responses)
{
    memset (server, 0, sizeof *server);
    server->responses = responses;
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
    shutdown (server->listener, SHUT_RDWR);
    close (server->listener);
    pthread_join (server->thread, NULL);
}

static rg_task_t *
s_task (void)
{
    cm_value_t *map = cm_map_new ();
    cm_map_set_str (map, "task_id", "regen_oa");
    cm_map_set_str (map, "user_query", "Say hello");
    cm_map_set_dbl (map, "temperature", 0.5);
    cm_value_t *conversation = cm_arr_new ();
    cm_value_t *turn = cm_map_new ();
    cm_map_set_str (turn, "role", "user");
    cm_map_set_str (turn, "content", "Say hello");
    cm_arr_push (conversation, turn);
    cm_map_set (map, "conversation", conversation);
    rg_task_t *task = NULL;
    assert_int_equal (rg_task_parse (map, &task), 0);
    cm_value_destroy (&map);
    return task;
}

static rg_backend_t *
s_backend (int port, int retries)
{
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", port);
    rg_openai_options_t options = {url, "test-key", "m-local", 2000, 5000, retries};
    rg_backend_t *backend = rg_openai_new (&options);
    assert_non_null (backend);
    return backend;
}

static void
test_parse_data (void **state)
{
    (void) state;
    char *content, *reasoning, *model;
    assert_int_equal (rg_openai_parse_data (" [DONE]", 7, &content, &reasoning, &model),
                      RG_STREAM_END);
    const char *line = "{\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}";
    assert_int_equal (rg_openai_parse_data (line, strlen (line), &content, &reasoning, &model),
                      0);
    assert_string_equal (content, "Hi");
    assert_null (reasoning);
    assert_string_equal (model, "m");
    free (content);
    free (model);
    line = "{\"choices\":[{\"delta\":{\"reasoning_content\":\"Think\"}}]}";
    assert_int_equal (rg_openai_parse_data (line, strlen (line), &content, &reasoning, &model),
                      0);
    assert_null (content);
    assert_string_equal (reasoning, "Think");
    free (reasoning);
    assert_int_equal (rg_openai_parse_data ("{nope", 5, &content, &reasoning, &model),
                      CM_EPROTO);
}

#define SSE_OK                                                                             \
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"      \
    ": keepalive\n\n"                                                                      \
    "data: {\"model\":\"m-up\",\"choices\":[{\"delta\":{\"reasoning_content\":\"Greet "   \
    "the user.\\n\\n\"}}]}\n\n"                                                            \
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"                     \
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\r\n\r\n"                  \
    "data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n"                     \
    "data: [DONE]\n\n"
#define HTTP_503                                                                           \
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
#define HTTP_500                                                                           \
    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\noops!"

static void
test_retry_then_stream (void **state)
{
    (void) state;
    const char *responses[] = {HTTP_503, SSE_OK, NULL};
    s_server_t server;
    s_server_start (&server, responses);
    rg_backend_t *backend = s_backend (server.port, 2);
    assert_string_equal (rg_backend_name (backend), "openai");
    rg_task_t *task = s_task ();
    rg_open_options_t options = {.thoughts = true};
    rg_stream_t *stream = NULL;
    char why[256];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    rg_chunk_t chunk;
    int rc, kinds[16], count = 0;
    char text[256] = "";
    while ((rc = rg_stream_next (stream, 100, &chunk)) >= 0 && rc != RG_STREAM_END) {
        if (rc != 0)
            continue;
        assert_true (count < 16);
        kinds[count++] = chunk.kind;
        if (chunk.kind == RG_CHUNK_TOKEN)
            strcat (text, chunk.text);
        if (chunk.kind == RG_CHUNK_THINK_STEP)
            assert_non_null (strstr (chunk.text, "Greet the user."));
    }
    assert_int_equal (rc, RG_STREAM_END);
    assert_int_equal (count, 5);
    assert_int_equal (kinds[0], RG_CHUNK_THINK_START);
    assert_int_equal (kinds[1], RG_CHUNK_THINK_STEP);
    assert_int_equal (kinds[2], RG_CHUNK_THINK_DONE);
    assert_int_equal (kinds[3], RG_CHUNK_TOKEN);
    assert_string_equal (text, "Hello world");
    assert_string_equal (rg_stream_model (stream), "m-up");
    assert_int_equal (server.served, 2);
    //  The request: the configured model, streaming, the bearer token.
    assert_non_null (strstr (server.last_request, "POST /v1/chat/completions"));
    assert_non_null (strstr (server.last_request, "Authorization: Bearer test-key"));
    assert_non_null (strstr (server.last_request, "\"stream\":true"));
    assert_non_null (strstr (server.last_request, "\"model\":\"m-local\""));
    assert_non_null (strstr (server.last_request, "\"content\":\"Say hello\""));
    rg_stream_destroy (&stream);
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
    rg_backend_t *backend = s_backend (server.port, 1);
    rg_task_t *task = s_task ();
    rg_open_options_t options = {.thoughts = false};
    rg_stream_t *stream = NULL;
    char why[256];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    rg_chunk_t chunk;
    int rc;
    while ((rc = rg_stream_next (stream, 100, &chunk)) == RG_STREAM_AGAIN)
        ;
    assert_int_equal (rc, CM_EBACKEND);
    const char *error = rg_stream_error (stream, &retryable);
    assert_non_null (strstr (error, "HTTP 500"));
    assert_true (retryable);
    assert_int_equal (server.served, 2);
    rg_stream_destroy (&stream);
    rg_backend_destroy (&backend);
    s_server_stop (&server);

    //  Nobody listening: a connection error, retryable.
    backend = s_backend (server.port, 0);
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    while ((rc = rg_stream_next (stream, 100, &chunk)) == RG_STREAM_AGAIN)
        ;
    assert_int_equal (rc, CM_EBACKEND);
    rg_stream_error (stream, &retryable);
    assert_true (retryable);
    rg_stream_destroy (&stream);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parse_data),
        cmocka_unit_test (test_retry_then_stream),
        cmocka_unit_test (test_errors_after_retries),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
