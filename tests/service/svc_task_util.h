/*  svc_task_util.h: helpers shared by the service tests of generation
    tasks (svc_takeover, svc_continue, svc_openai, svc_chaos_gen): find a
    task's events in a reader's stream, read the stored answer once it is
    no longer being written, check that a reader's text only grows (no
    rewind, no repeated segment) with one resumed: true seam, and compose
    the builtin answer an uninterrupted run writes.

    Everything is static inline, as in svc_api_util.h, so each test binary
    takes what it uses. The binaries that include it link regenerator_core
    (tests/service/CMakeLists.txt) for the builtin composer.             */
#ifndef SVC_TASK_UTIL_H_INCLUDED
#define SVC_TASK_UTIL_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rg_builtin.h"
#include "svc_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline const char *
st_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  The task id of an event, or NULL.
static inline const char *
st_task_of (const svc_event_t *event)
{
    return event->json ? st_str (event->json, "taskId") : NULL;
}

//  Index of the first event at or after from of type for task_id (NULL:
//  any task), waiting up to timeout_ms; -1 when none came.
static inline long
st_find (svc_sse_t *sse, size_t from, const char *type, const char *task_id, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    size_t i = from;
    while (true) {
        for (size_t count = svc_sse_count (sse); i < count; i++) {
            const svc_event_t *event = svc_sse_at (sse, i);
            const char *task = st_task_of (event);
            if (strcmp (event->event, type) == 0
                && (!task_id || (task && strcmp (task, task_id) == 0)))
                return (long) i;
        }
        double left = deadline - svc_now_ms ();
        if (left <= 0)
            return -1;
        svc_sse_wait (sse, NULL, left < 100 ? (int) left + 1 : 100);
    }
}

//  The session view's messages (caller decrefs).
static inline json_t *
st_messages (svc_mesh_t *mesh, const char *token, const char *session)
{
    char path[300];
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    json_t *messages
        = json_incref (json_object_get (json_object_get (response.json, "session"), "messages"));
    svc_response_free (&response);
    return messages;
}

//  The stored message at index of session (caller decrefs).
static inline json_t *
st_stored (svc_mesh_t *mesh, const char *token, const char *session, size_t index)
{
    json_t *messages = st_messages (mesh, token, session);
    json_t *message = json_incref (json_array_get (messages, index));
    assert_non_null (message);
    json_decref (messages);
    return message;
}

static inline const char *
st_finish_reason (const json_t *message)
{
    return st_str (json_object_get (message, "metadata"), "finish_reason");
}

//  Waits until the message at index is no longer being written; returns
//  its content (caller frees).
static inline char *
st_wait_answer (svc_mesh_t *mesh, const char *token, const char *session, size_t index)
{
    for (double until = svc_now_ms () + 30000; svc_now_ms () < until;) {
        json_t *message = st_stored (mesh, token, session, index);
        bool busy = json_is_true (
            json_object_get (json_object_get (message, "metadata"), "regenerating"));
        char *content = busy ? NULL : strdup (st_str (message, "content"));
        json_decref (message);
        if (content)
            return content;
        usleep (50 * 1000);
    }
    fail_msg ("the answer of %s never ended", session);
    return NULL;
}

//  One turn of session; returns its task id (caller frees).
static inline char *
st_turn (svc_mesh_t *mesh, const char *token, const char *session, const char *query)
{
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, session, query, &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    return task_id;
}

//  Waits until the log <dir>/log/name contains needle. 0 or -1.
static inline int
st_wait_log (svc_mesh_t *mesh, const char *name, const char *needle, int timeout_ms)
{
    char path[600];
    snprintf (path, sizeof path, "%s/log/%s", svc_mesh_dir (mesh), name);
    for (double until = svc_now_ms () + timeout_ms; svc_now_ms () < until;) {
        char *log = svc_read_file (path);
        bool found = log && strstr (log, needle);
        free (log);
        if (found)
            return 0;
        usleep (20 * 1000);
    }
    fprintf (stderr, "%s never said '%s'\n", name, needle);
    return -1;
}

//  One POST of body (NULL: none); its status, the answer kept in
//  *response when not NULL. header: one more "Name: value" line or NULL.
static inline long
st_post (svc_mesh_t *mesh, const char *token, const char *path, const char *body,
         const char *header, svc_response_t *response)
{
    svc_response_t local;
    svc_response_t *r = response ? response : &local;
    assert_int_equal (svc_http_ex (mesh, "POST", path, token, body, NULL, header, r), 0);
    long status = r->status;
    if (!response)
        svc_response_free (&local);
    return status;
}

//  The reader's view of a task that was taken over, up to its
//  message_regenerated at index done: every partialContent extends the
//  one before (no rewind, no repeat), the final content extends the last,
//  exactly one progress is resumed: true, and it comes after text was
//  already shown. Returns the final content (borrowed); *seam gets the
//  resumed event's arrival (svc_now_ms clock).
static inline const char *
st_check_seam (svc_sse_t *sse, const char *task_id, long done, double *seam)
{
    const char *last = "";
    int resumed = 0;
    for (long i = 0; i <= done; i++) {
        const svc_event_t *event = svc_sse_at (sse, (size_t) i);
        const char *task = st_task_of (event);
        if (!task || strcmp (task, task_id) != 0)
            continue;
        const char *text = i == done ? st_str (event->json, "content")
                                     : st_str (event->json, "partialContent");
        if (strcmp (event->event, "regeneration_progress") != 0 && i != done)
            continue;
        assert_non_null (text);
        if (strncmp (text, last, strlen (last)) != 0)
            fail_msg ("event %ld rewinds: '%.40s...' does not extend '%.40s...'", i, text, last);
        if (json_is_true (json_object_get (event->json, "resumed"))) {
            resumed++;
            assert_true (strlen (last) > 0);
            *seam = event->received_ms;
        }
        last = text;
    }
    assert_int_equal (resumed, 1);
    return last;
}

//  The reader's view of a continue task: message_regenerating first, every
//  partialContent extends the one before starting from `from_text`, the
//  first is resumed: true (the seam) and no other, and the final content
//  extends the last. Returns the final content (borrowed).
static inline const char *
st_check_growth (svc_sse_t *sse, const char *task_id, const char *from_text, long done)
{
    const char *last = from_text;
    int resumed = 0, progress = 0;
    bool started = false;
    for (long i = 0; i <= done; i++) {
        const svc_event_t *event = svc_sse_at (sse, (size_t) i);
        const char *task = st_task_of (event);
        if (!task || strcmp (task, task_id) != 0)
            continue;
        if (strcmp (event->event, "message_regenerating") == 0) {
            started = true;
            continue;
        }
        const char *text = i == done ? st_str (event->json, "content")
                                     : st_str (event->json, "partialContent");
        if (strcmp (event->event, "regeneration_progress") != 0 && i != done)
            continue;
        assert_true (started);
        assert_non_null (text);
        if (strncmp (text, last, strlen (last)) != 0)
            fail_msg ("event %ld rewinds: '%.40s...' does not extend '%.40s...'", i, text, last);
        if (i != done && json_is_true (json_object_get (event->json, "resumed"))) {
            assert_int_equal (progress, 0);
            resumed++;
        }
        progress += i != done;
        last = text;
    }
    assert_int_equal (resumed, 1);
    return last;
}

//  The builtin answer an uninterrupted run of kind writes for task_id,
//  answering the last of turns (role, content pairs). Caller frees.
static inline char *
st_uninterrupted (const char *task_id, const char *kind, const char *const turns[][2],
                  size_t count)
{
    cm_value_t *map = cm_map_new ();
    cm_map_set_str (map, "task_id", task_id);
    cm_map_set_str (map, "kind", kind);
    cm_map_set_str (map, "user_query", turns[count - 1][1]);
    cm_value_t *conversation = cm_arr_new ();
    for (size_t i = 0; i < count; i++) {
        cm_value_t *turn = cm_map_new ();
        cm_map_set_str (turn, "role", turns[i][0]);
        cm_map_set_str (turn, "content", turns[i][1]);
        cm_arr_push (conversation, turn);
    }
    cm_map_set (map, "conversation", conversation);
    rg_task_t *task = NULL;
    assert_int_equal (rg_task_parse (map, &task), 0);
    cm_value_destroy (&map);
    rg_builtin_text_t text;
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), task->temperature, &text),
                      0);
    char *answer = strdup (text.answer);
    rg_builtin_text_free (&text);
    rg_task_destroy (&task);
    return answer;
}

#endif
