/*  svc_idem: Idempotency-Key through the real binaries and two gateways.
    20 retries of one regenerate, one vote and one edit, each with one key,
    sent at once through both gateways: every retry gets the first answer
    and the store did the thing once (one task, one vote, one history
    entry). The same key with another body is 422; a malformed key is
    400; no key at all behaves as before.                                */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_raw.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RETRIES 20

typedef struct {
    const char *base, *method, *path, *token, *body, *header;
    svc_response_t response;
} s_shot_t;

static void *
s_shoot (void *arg)
{
    s_shot_t *shot = arg;
    svc_http_at (shot->base, shot->method, shot->path, shot->token, shot->body, NULL,
                 shot->header, &shot->response);
    return NULL;
}

//  RETRIES copies of one request with one Idempotency-Key, all at once,
//  alternating between the gateways. Every one must answer 200 with the
//  same data.<field> (or top-level field when data has none); returns it
//  (caller frees).
static char *
s_retries (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
           const char *body, const char *key, const char *field)
{
    char header[300];
    snprintf (header, sizeof header, "Idempotency-Key: %s", key);
    s_shot_t shots[RETRIES];
    pthread_t threads[RETRIES];
    for (int i = 0; i < RETRIES; i++) {
        shots[i] = (s_shot_t) {i % 2 ? svc_mesh_url2 (mesh) : svc_mesh_url (mesh), method, path,
                               token, body, header, {0}};
        assert_int_equal (pthread_create (&threads[i], NULL, s_shoot, &shots[i]), 0);
    }
    for (int i = 0; i < RETRIES; i++)
        pthread_join (threads[i], NULL);
    char *first = NULL;
    int originals = 0;
    for (int i = 0; i < RETRIES; i++) {
        char replayed[16];
        if (svc_response_header (&shots[i].response, "Idempotent-Replayed", replayed,
                                 sizeof replayed))
            originals++;
        else
            assert_string_equal (replayed, "true");
        if (shots[i].response.status != 200)
            fail_msg ("retry %d of %s %s: %ld %s", i, method, path, shots[i].response.status,
                      shots[i].response.body);
        const char *value = svc_json_str (shots[i].response.json, "data", field);
        if (!value)
            value = svc_json_str (shots[i].response.json, field, NULL);
        assert_non_null (value);
        if (!first)
            first = strdup (value);
        assert_string_equal (value, first);
        svc_response_free (&shots[i].response);
    }
    //  One of them did it; the others were told they are replays.
    assert_int_equal (originals, 1);
    return first;
}

static json_t *
s_get (svc_mesh_t *mesh, const char *token, const char *path)
{
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    json_t *json = json_incref (response.json);
    svc_response_free (&response);
    return json;
}

//  Waits until no message of session is being written.
static void
s_settle (svc_mesh_t *mesh, const char *token, const char *session)
{
    char path[300];
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    for (double until = svc_now_ms () + 30000; svc_now_ms () < until;) {
        json_t *json = s_get (mesh, token, path);
        json_t *messages = json_object_get (json_object_get (json, "session"), "messages");
        bool busy = false;
        for (size_t i = 0; i < json_array_size (messages); i++)
            busy |= json_is_true (json_object_get (
                json_object_get (json_array_get (messages, i), "metadata"), "regenerating"));
        json_decref (json);
        if (!busy)
            return;
        usleep (50 * 1000);
    }
    fail_msg ("%s never settled", session);
}

static long
s_status (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
          const char *body, const char *header, char *code, size_t size)
{
    svc_response_t response;
    assert_int_equal (
        svc_http_ex (mesh, method, path, token, body, NULL, header, &response), 0);
    long status = response.status;
    snprintf (code, size, "%s", svc_json_str (response.json, "code", NULL)
                                    ? svc_json_str (response.json, "code", NULL)
                                    : "");
    svc_response_free (&response);
    return status;
}

static void
test_retries_have_one_effect (void **state)
{
    (void) state;
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0",
                         "CHATMESH_BUILTIN_TOKENS_PER_SEC=0", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    assert_int_equal (svc_mesh_spawn_gateway2 (mesh, NULL), 0);
    char *token = svc_token (mesh, "idem", 600);
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, "idem_s", "What does idempotent mean?", &response),
                      200);
    char user_id[400], asst_id[400];
    snprintf (user_id, sizeof user_id, "%s",
              svc_json_str (response.json, "data", "user_message_id"));
    snprintf (asst_id, sizeof asst_id, "%s",
              svc_json_str (response.json, "data", "assistant_message_id"));
    svc_response_free (&response);
    s_settle (mesh, token, "idem_s");

    //  Regenerate: one task, whichever gateway each retry reached.
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", asst_id);
    char *task = s_retries (mesh, "POST", path, token, "{\"context\": \"shorter\"}",
                            "regen-7f3a", "task_id");
    s_settle (mesh, token, "idem_s");
    json_t *analytics = s_get (mesh, token, "/api/sessions/idem_s/analytics");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (analytics,
                                                                            "analytics"),
                                                           "regeneration_count")),
                      1);
    json_decref (analytics);
    //  The same key with another body: 422, and still one regeneration.
    char code[64];
    assert_int_equal (s_status (mesh, "POST", path, token, "{\"context\": \"longer\"}",
                                "Idempotency-Key: regen-7f3a", code, sizeof code),
                      422);
    assert_string_equal (code, "idempotency_key_reused");
    //  A malformed key: 400, nothing done.
    assert_int_equal (s_status (mesh, "POST", path, token, "{}", "Idempotency-Key: two words",
                                code, sizeof code),
                      400);
    assert_string_equal (code, "invalid_idempotency_key");
    analytics = s_get (mesh, token, "/api/sessions/idem_s/analytics");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (analytics,
                                                                            "analytics"),
                                                           "regeneration_count")),
                      1);
    json_decref (analytics);

    //  A vote: one feedback id for all (each vote without a key gets a new one).
    snprintf (path, sizeof path, "/api/messages/%s/feedback", asst_id);
    char *feedback = s_retries (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}",
                                "vote-1", "feedback_id");
    assert_true (strlen (feedback) > 0);

    //  A streaming ask retried after its answer ended: the first answer, as
    //  JSON at once (there is no task left to stream until).
    const char *ask = "{\"query\": \"And once more?\"}";
    assert_int_equal (s_status (mesh, "POST", "/api/run_sse/idem_s", token, ask,
                                "Idempotency-Key: ask-1", code, sizeof code),
                      200);
    s_settle (mesh, token, "idem_s");
    char request[2048];
    int len = snprintf (request, sizeof request,
                        "POST /api/run_sse/idem_s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n"
                        "Idempotency-Key: ask-1\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                        token, strlen (ask), ask);
    assert_true (len > 0 && len < (int) sizeof request);
    svc_raw_t streamed;
    //  Within the 5 s receive timeout, and closed by the server.
    assert_int_equal (svc_raw_exchange (svc_mesh_port (mesh), request, (size_t) len, 5000,
                                        &streamed),
                      200);
    assert_true (streamed.closed);
    assert_non_null (strstr (streamed.text, "Idempotent-Replayed: true"));
    assert_non_null (svc_json_str (streamed.json, "data", "task_id"));
    svc_raw_free (&streamed);

    //  An edit: one history entry.
    snprintf (path, sizeof path, "/api/messages/%s", user_id);
    free (s_retries (mesh, "PUT", path, token,
                     "{\"content\": \"What does idempotent mean, exactly?\", "
                     "\"trigger_regeneration\": false}",
                     "edit-1", "new_content"));
    snprintf (path, sizeof path, "/api/messages/%s/history", user_id);
    json_t *history = s_get (mesh, token, path);
    assert_int_equal (json_integer_value (json_object_get (history, "edit_count")), 1);
    assert_int_equal (json_array_size (json_object_get (history, "history")), 1);
    json_decref (history);
    free (feedback);
    free (task);
    free (token);
    svc_mesh_stop (&mesh);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_retries_have_one_effect),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
