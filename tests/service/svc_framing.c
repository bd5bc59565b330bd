/*  svc_framing: the vestibule (gateway/gw_accept.h) against raw sockets.

    - Every ambiguous request framing of issue 25 gets a JSON error with
      the right status, the connection is closed after it, and an edit
      smuggled behind it is never stored; valid framing is served.
    - A client that does not finish its request head is cut off at the
      header deadline with a 408.
    - The per-address cap refuses connection N+1 from one address with a
      429 (and one warning), while other addresses are served.          */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_raw.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Framing

typedef struct {
    svc_mesh_t *mesh;
    char *token;
    char session[64];
    char user_msg[256];
} s_fixture_t;

static int
s_setup (void **state)
{
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", NULL};
    s_fixture_t *f = calloc (1, sizeof *f);
    f->mesh = svc_mesh_start (env);
    if (!f->mesh)
        return -1;
    f->token = svc_token (f->mesh, "framing_user", 3600);
    snprintf (f->session, sizeof f->session, "framing_session");
    svc_response_t response;
    if (svc_http (f->mesh, "POST", "/api/run_sse/framing_session", f->token, "{\"query\": \"hello\"}",
                  &response)
        || response.status != 200)
        return -1;
    const char *id = json_string_value (
        json_object_get (json_object_get (response.json, "data"), "user_message_id"));
    snprintf (f->user_msg, sizeof f->user_msg, "%s", id ? id : "");
    const char *task = json_string_value (
        json_object_get (json_object_get (response.json, "data"), "task_id"));
    char path[256];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", task ? task : "none");
    svc_response_free (&response);
    *state = f;
    //  Edits of the user message wait for the answer (409 while it runs).
    for (double start = svc_now_ms (); svc_now_ms () - start < 20000; usleep (50000)) {
        if (svc_http (f->mesh, "GET", path, f->token, NULL, &response))
            return -1;
        const char *status = json_string_value (json_object_get (response.json, "status"));
        bool done = status && (strcmp (status, "completed") == 0 || strcmp (status, "failed") == 0);
        svc_response_free (&response);
        if (done)
            return id ? 0 : -1;
    }
    return -1;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    svc_mesh_stop (&f->mesh);
    free (f->token);
    free (f);
    return 0;
}

//  The session's stored messages as JSON text. Caller frees.
static char *
s_session_text (s_fixture_t *f)
{
    svc_response_t response;
    assert_int_equal (svc_http (f->mesh, "GET", "/api/sessions/framing_session", f->token, NULL, &response),
                      0);
    assert_int_equal (response.status, 200);
    char *text = strdup (response.body);
    svc_response_free (&response);
    return text;
}

//  One row: a request template, where "{EDIT}" stands for a complete
//  edit request of the user message (content "SMUGGLED") and "{ID}" for
//  the message id, "{TOKEN}" for the bearer token, "{N}" for the byte
//  count of everything after the head (so a CL-reading server takes the
//  smuggled request as body, a TE-reading one as a second request).
typedef struct {
    const char *name;
    const char *request;
    long status;
    const char *code;   //  NULL: a success
    const char *stored; //  a success that edits: text the session holds after it
} s_row_t;

#define EDIT_BODY "{\"content\": \"SMUGGLED\"}"
#define HEAD_OK "Host: g\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"

static const s_row_t s_rows[] = {
    {"CL then TE", "POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: {N}\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "0\r\n\r\n{EDIT}", 400, "bad_request", NULL},
    {"TE then CL", "POST /healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\nContent-Length: {N}\r\n\r\n"
                   "0\r\n\r\n{EDIT}", 400, "bad_request", NULL},
    {"two Content-Lengths, short first",
     "POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 0\r\nContent-Length: {N}\r\n\r\n{EDIT}", 400,
     "bad_request", NULL},
    {"two Content-Lengths, long first",
     "POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 9999\r\nContent-Length: 0\r\n\r\n{EDIT}", 400,
     "bad_request", NULL},
    {"obs-fold swallows Content-Length",
     "POST /healthz HTTP/1.1\r\nHost: g\r\nX-Note: a\r\n Content-Length: {N}\r\nContent-Length: 0\r\n\r\n{EDIT}",
     400, "bad_request", NULL},
    {"space before colon, TE",
     "POST /healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{EDIT}", 400,
     "bad_request", NULL},
    {"space before colon, CL", "POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length : 0\r\n\r\n{EDIT}", 400,
     "bad_request", NULL},
    {"hex Content-Length", "POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 0x21\r\n\r\n{EDIT}", 400,
     "bad_request", NULL},
    {"signed Content-Length", "POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: +0\r\n\r\n{EDIT}", 400,
     "bad_request", NULL},
    {"Content-Length with junk", "POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 0abc\r\n\r\n{EDIT}", 400,
     "bad_request", NULL},
    {"bare LF", "POST /healthz HTTP/1.1\nHost: g\nContent-Length: 0\n\n{EDIT}", 400, "bad_request", NULL},
    {"no Host", "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n{EDIT}", 400, "bad_request", NULL},
    {"two Hosts", "POST /healthz HTTP/1.1\r\nHost: g\r\nHost: h\r\nContent-Length: 0\r\n\r\n{EDIT}", 400,
     "bad_request", NULL},
    {"absolute-form", "GET http://g/healthz HTTP/1.1\r\nHost: g\r\n\r\n{EDIT}", 400, "bad_request", NULL},
    {"HTTP/2.0", "GET /healthz HTTP/2.0\r\nHost: g\r\n\r\n{EDIT}", 505, "http_version_not_supported", NULL},
    {"gzip coding", "POST /healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: gzip\r\n\r\n{EDIT}", 501,
     "not_implemented", NULL},
    //  Valid framing: served, and only the one request of the connection.
    {"valid Content-Length", "PUT /api/messages/{ID} HTTP/1.1\r\n" HEAD_OK "Content-Length: 51\r\n\r\n"
                             "{\"content\":\"cl-valid\",\"trigger_regeneration\":false}{EDIT}", 200, NULL,
     "cl-valid"},
    {"valid chunked with trailer",
     "PUT /api/messages/{ID} HTTP/1.1\r\n" HEAD_OK "Transfer-Encoding: chunked\r\n\r\n"
     "d\r\n{\"content\":\"c\r\n26\r\nhunk-ok\",\"trigger_regeneration\":false}\r\n0\r\nX-Trailer: yes\r\n\r\n{EDIT}", 200, NULL,
     "chunk-ok"},
    {"valid chunk extensions",
     "PUT /api/messages/{ID} HTTP/1.1\r\n" HEAD_OK "Transfer-Encoding: chunked\r\n\r\n"
     "d;a=b\r\n{\"content\":\"e\r\n25 ; name ; q=\"x;y\"\r\nxt-ok!\",\"trigger_regeneration\":false}\r\n0;z\r\n\r\n{EDIT}",
     200, NULL, "ext-ok!"},
    {"chunk size not hex", "PUT /api/messages/{ID} HTTP/1.1\r\n" HEAD_OK "Transfer-Encoding: chunked\r\n\r\n"
     "zz\r\n{\"content\":\"zz\"}\r\n0\r\n\r\n{EDIT}", 400, "bad_request", NULL},
    {"chunk size too long", "PUT /api/messages/{ID} HTTP/1.1\r\n" HEAD_OK "Transfer-Encoding: chunked\r\n\r\n"
     "10000000000000000d\r\n{\"content\":\"c\"}\r\n0\r\n\r\n{EDIT}", 400, "bad_request", NULL},
    {"chunk extension without ';'", "PUT /api/messages/{ID} HTTP/1.1\r\n" HEAD_OK "Transfer-Encoding: chunked\r\n\r\n"
     "d a=b\r\n{\"content\":\"c\r\n0\r\n\r\n{EDIT}", 400, "bad_request", NULL},
    {"HTTP/1.0 without Host", "GET /healthz HTTP/1.0\r\n\r\n{EDIT}", 200, NULL, NULL},
    {"pipelined GET", "GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n{EDIT}", 200, NULL, NULL},
};

//  Expands a row's template into buf.
static size_t
s_expand (s_fixture_t *f, const char *template, char *buf, size_t size)
{
    char edit[2048];
    snprintf (edit, sizeof edit,
              "PUT /api/messages/%s HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer %s\r\n"
              "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
              f->user_msg, f->token, strlen (EDIT_BODY), EDIT_BODY);
    //  {N}: the bytes after the head once expanded ("0\r\n\r\n" + edit or the edit).
    const char *head_end = strstr (template, "\r\n\r\n");
    if (!head_end)
        head_end = strstr (template, "\n\n");
    size_t after = strlen (edit) + (strstr (template, "\r\n\r\n0\r\n\r\n") ? 5 : 0);
    size_t len = 0;
    for (const char *p = template; *p && len + 1 < size;) {
        const char *insert = NULL;
        char number[32];
        size_t skip = 0;
        if (strncmp (p, "{EDIT}", 6) == 0)
            insert = edit, skip = 6;
        else if (strncmp (p, "{ID}", 4) == 0)
            insert = f->user_msg, skip = 4;
        else if (strncmp (p, "{TOKEN}", 7) == 0)
            insert = f->token, skip = 7;
        else if (strncmp (p, "{N}", 3) == 0) {
            snprintf (number, sizeof number, "%zu", after);
            insert = number, skip = 3;
        }
        if (insert) {
            len += (size_t) snprintf (buf + len, size - len, "%s", insert);
            p += skip;
        }
        else
            buf[len++] = *p++;
    }
    buf[len] = 0;
    return len;
}

static void
test_framing_table (void **state)
{
    s_fixture_t *f = *state;
    char request[8192];
    for (size_t i = 0; i < sizeof s_rows / sizeof s_rows[0]; i++) {
        const s_row_t *row = &s_rows[i];
        size_t len = s_expand (f, row->request, request, sizeof request);
        svc_raw_t answer;
        long status = svc_raw_exchange (svc_mesh_port (f->mesh), request, len, 5000, &answer);
        const char *response = answer.text ? answer.text : "";
        if (status != row->status)
            fail_msg ("%s: answered %ld, expected %ld: %.300s", row->name, status, row->status, response);
        if (!answer.closed)
            fail_msg ("%s: the connection was not closed after the answer", row->name);
        //  Exactly one answer on the connection (its head and its
        //  Content-Length of body, nothing after): the smuggled edit never ran.
        const char *head_end = strstr (response, "\r\n\r\n");
        const char *length = strcasestr (response, "\r\nContent-Length: ");
        if (!head_end || !length || length > head_end
            || strlen (response) != (size_t) (head_end + 4 - response) + strtoul (length + 18, NULL, 10))
            fail_msg ("%s: not exactly one answer: %.900s", row->name, response);
        if (!strstr (response, "Connection: close\r\n"))
            fail_msg ("%s: no Connection: close", row->name);
        if (row->code) {
            const char *body = strstr (response, "\r\n\r\n");
            const json_t *json = answer.json;
            if (!json || json_is_true (json_object_get (json, "success"))
                || strcmp (json_string_value (json_object_get (json, "code")) ?: "", row->code) != 0
                || !json_string_value (json_object_get (json, "error")))
                fail_msg ("%s: body is not the JSON error '%s': %s", row->name, row->code,
                          body ? body + 4 : "(none)");
        }
        svc_raw_free (&answer);
        char *stored = s_session_text (f);
        if (strstr (stored, "SMUGGLED"))
            fail_msg ("%s: the smuggled edit was stored", row->name);
        if (row->stored && !strstr (stored, row->stored))
            fail_msg ("%s: the edit '%s' was not stored (chunks joined, extensions dropped)", row->name,
                      row->stored);
        free (stored);
    }
}

//  A head larger than 16 KiB: 431 before it is even complete.
static void
test_head_limit (void **state)
{
    s_fixture_t *f = *state;
    size_t size = 17000;
    char *request = malloc (size + 1);
    int n = snprintf (request, size, "GET /healthz HTTP/1.1\r\nHost: g\r\nX-Pad: ");
    memset (request + n, 'a', size - (size_t) n);
    request[size] = 0;
    svc_raw_t answer;
    assert_int_equal (svc_raw_exchange (svc_mesh_port (f->mesh), request, size, 5000, &answer),
                      431);
    assert_true (answer.closed);
    assert_non_null (strstr (answer.text, "\"code\":\"header_too_large\""));
    svc_raw_free (&answer);
    free (request);
}


//  ---------------------------------------------------------------------
//  Header deadline and per-address cap, each on its own gateway

static size_t
s_send_text (int fd, const char *text)
{
    return svc_raw_send (fd, text, strlen (text));
}

//  The status of a complete GET /healthz sent from `from`, or -1.
static long
s_healthz_from (int port, const char *from)
{
    int fd = svc_raw_connect (port, from, 5000);
    if (fd < 0)
        return -1;
    s_send_text (fd, "GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n");
    char *response = svc_raw_read_all (fd, NULL);
    close (fd);
    long status = svc_raw_status (response);
    free (response);
    return status;
}

static void
test_header_deadline (void **state)
{
    (void) state;
    enum { DEADLINE_MS = 600 };
    const char *env[] = {"CHATMESH_HEADER_TIMEOUT_MS=600", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    int port = svc_mesh_port (mesh);
    //  A slowloris: a header line every 50 ms, never the empty line.
    int slow = svc_raw_connect (port, NULL, 5000);
    assert_true (slow >= 0);
    double start = svc_now_ms ();
    assert_true (s_send_text (slow, "GET /healthz HTTP/1.1\r\nHost: g\r\n") > 0);
    struct pollfd p = {slow, POLLIN, 0};
    while (poll (&p, 1, 50) == 0 && svc_now_ms () - start < 10000)
        s_send_text (slow, "X-A: b\r\n");
    bool closed;
    char *response = svc_raw_read_all (slow, &closed);
    double cut = svc_now_ms () - start;
    close (slow);
    assert_true (closed);
    if (strncmp (response, "HTTP/1.1 408 ", 13) != 0 || !strstr (response, "\"code\":\"request_timeout\""))
        fail_msg ("no JSON 408 for the slowloris: %s", response);
    free (response);
    if (cut < DEADLINE_MS - 50 || cut > 5000)
        fail_msg ("slowloris cut after %.0f ms, the deadline is %d ms", cut, DEADLINE_MS);
    //  A slow client that finishes within the deadline is served.
    int fd = svc_raw_connect (port, NULL, 5000);
    assert_true (fd >= 0);
    assert_true (s_send_text (fd, "GET /healthz HTTP/1.1\r\n") > 0);
    usleep (200 * 1000);
    assert_true (s_send_text (fd, "Host: g\r\n\r\n") > 0);
    response = svc_raw_read_all (fd, &closed);
    close (fd);
    assert_int_equal (strncmp (response, "HTTP/1.1 200 ", 13), 0);
    free (response);
    svc_mesh_stop (&mesh);
    print_message ("header deadline %d ms: slowloris cut after %.0f ms\n", DEADLINE_MS, cut);
}

static int
s_count_lines (const char *text, const char *needle)
{
    int count = 0;
    for (const char *p = text ? strstr (text, needle) : NULL; p; p = strstr (p + 1, needle))
        count++;
    return count;
}

static void
test_per_address_cap (void **state)
{
    (void) state;
    enum { CAP = 8, BURST = 40 };
    const char *env[] = {"CHATMESH_MAX_CONNS_PER_ADDR=8", "CHATMESH_HEADER_TIMEOUT_MS=60000", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    int port = svc_mesh_port (mesh);
    //  CAP idle connections from 127.0.0.3 fill its share.
    int idle[CAP];
    for (int i = 0; i < CAP; i++) {
        idle[i] = svc_raw_connect (port, "127.0.0.3", 5000);
        assert_true (idle[i] >= 0);
    }
    //  The next ones from there get a JSON 429 and are closed, at once.
    double start = svc_now_ms ();
    for (int i = 0; i < BURST; i++) {
        int fd = svc_raw_connect (port, "127.0.0.3", 5000);
        assert_true (fd >= 0);
        bool closed;
        char *response = svc_raw_read_all (fd, &closed);
        close (fd);
        assert_true (closed);
        if (strncmp (response, "HTTP/1.1 429 ", 13) != 0
            || !strstr (response, "\"code\":\"too_many_connections\""))
            fail_msg ("connection %d over the cap: %s", CAP + 1 + i, response);
        free (response);
    }
    double burst_s = (svc_now_ms () - start) / 1000;
    //  Another address is served meanwhile.
    assert_int_equal (s_healthz_from (port, "127.0.0.4"), 200);
    //  One clear warning a second at most.
    char log_path[1024];
    snprintf (log_path, sizeof log_path, "%s/log/gateway.log", svc_mesh_dir (mesh));
    char *log = NULL;
    for (double t0 = svc_now_ms (); svc_now_ms () - t0 < 5000; usleep (20000)) {
        free (log);
        log = svc_read_file (log_path);
        if (s_count_lines (log, "connection cap: refused") > 0)
            break;
    }
    int lines = s_count_lines (log, "connection cap: refused");
    assert_true (lines >= 1);
    assert_true (lines <= (int) burst_s + 2);
    assert_non_null (strstr (log, "from 127.0.0.3 (CHATMESH_MAX_CONNS_PER_ADDR=8"));
    free (log);
    //  A freed place is taken again.
    close (idle[0]);
    long status = -1;
    for (double t0 = svc_now_ms (); status != 200 && svc_now_ms () - t0 < 5000; usleep (20000))
        status = s_healthz_from (port, "127.0.0.3");
    assert_int_equal (status, 200);
    for (int i = 1; i < CAP; i++)
        close (idle[i]);
    svc_mesh_stop (&mesh);
    print_message ("per-address cap %d: %d refused in %.2f s, %d warning line(s)\n", CAP, BURST, burst_s,
                   lines);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_framing_table),
        cmocka_unit_test (test_head_limit),
        cmocka_unit_test (test_header_deadline),
        cmocka_unit_test (test_per_address_cap),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
