/*  svc_json_util.h: JSON API calls for service tests that check each
    answer as they go: a request that must answer a status (the parsed
    body back), typed field reads that fail the test naming the field, and
    a wait for a task to complete, a vote, and a wait for a stream to hold
    a number of events of one type. Header-only (static inline), to be
    included after cmocka.h; an unused one draws no warning.              */
#ifndef SVC_JSON_UTIL_H_INCLUDED
#define SVC_JSON_UTIL_H_INCLUDED

#include "svc_harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  One request that must answer `want`; the parsed body (caller decrefs).
static inline json_t *
svc_want_call (svc_mesh_t *mesh, const char *token, const char *method, const char *path,
        const char *body, long want)
{
    svc_response_t response;
    assert_int_equal (svc_http (mesh, method, path, token, body, &response), 0);
    if (response.status != want)
        fail_msg ("%s %s: %ld, wanted %ld: %.400s", method, path, response.status, want,
                  response.body ? response.body : "");
    json_t *json = json_incref (response.json);
    assert_non_null (json);
    svc_response_free (&response);
    return json;
}

static inline const char *
svc_want_str (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    if (!value)
        fail_msg ("'%s' is missing or not a string", key);
    return value ? value : ""; //  (fail_msg has already ended the test)
}

static inline long long
svc_want_int (const json_t *object, const char *key)
{
    json_t *value = json_object_get (object, key);
    if (!json_is_integer (value))
        fail_msg ("'%s' is missing or not an integer", key);
    return json_integer_value (value);
}

//  Polls the task until it completed. Fails on failure or timeout.
static inline void
svc_want_task (svc_mesh_t *mesh, const char *token, const char *task_id, int timeout_ms)
{
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", task_id);
    double deadline = svc_now_ms () + timeout_ms;
    while (svc_now_ms () < deadline) {
        json_t *json = svc_want_call (mesh, token, "GET", path, NULL, 200);
        char status[32];
        snprintf (status, sizeof status, "%s", svc_want_str (json, "status"));
        json_decref (json);
        if (strcmp (status, "completed") == 0)
            return;
        assert_string_not_equal (status, "failed");
        usleep (20 * 1000);
    }
    fail_msg ("task %s did not complete in %d ms", task_id, timeout_ms);
}

//  Vote number i on the message: an upvote when i is even, a downvote
//  when odd (so consecutive votes each change the feedback). Must answer 200.
static inline void
svc_want_vote (svc_mesh_t *mesh, const char *token, const char *message_id, int i)
{
    char path[2048];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", message_id);
    json_decref (svc_want_call (mesh, token, "POST", path,
                                i % 2 ? "{\"feedback_type\": \"downvote\"}" : "{\"feedback_type\": \"upvote\"}",
                                200));
}

//  Waits until the stream holds count events of type (from index 0).
//  False when the timeout passes or the stream closes first.
static inline bool
svc_sse_wait_count (svc_sse_t *sse, const char *type, size_t count, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    while (true) {
        size_t have = 0, n = svc_sse_count (sse);
        for (size_t i = 0; i < n; i++)
            have += strcmp (svc_sse_at (sse, i)->event, type) == 0;
        if (have >= count)
            return true;
        if (svc_now_ms () > deadline || svc_sse_closed (sse))
            return false;
        //  Any new event wakes this; the timeout only bounds the wait.
        svc_sse_wait (sse, NULL, 100);
    }
}

#endif
