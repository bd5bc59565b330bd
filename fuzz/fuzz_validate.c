/*  fuzz_validate: the JSON request body of every endpoint takes any bytes.
    The first byte picks the endpoint; the rest is the body. A body that
    validates must give a payload that encodes to msgpack and decodes back
    to the same value (the store then sees exactly what was checked), and a
    rejected body must carry a 4xx verdict with a code and a sentence.
    Each input runs on a thread with a small stack, like a civetweb
    worker's: jansson recurses per nesting level, and a deep body once
    overflowed the gateway's stack while passing here on the main one.  */
#include "cm_codec.h"
#include "cm_error.h"
#include "cm_value.h"
#include "gw_json.h"
#include "gw_validate.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { S_RUN_SSE, S_REGENERATE, S_REGENERATE_EMPTY, S_EDIT, S_FEEDBACK, S_CONTENT_TYPE,
       S_ENDPOINTS };

static void
s_check_verdict (const gw_verdict_t *verdict)
{
    if (verdict->status < 400 || verdict->status > 499 || !verdict->code || !*verdict->code
        || !verdict->error[0] || strnlen (verdict->error, sizeof verdict->error) == sizeof verdict->error)
        abort ();
}

static void
s_check_payload (const cm_value_t *payload)
{
    char *bytes = NULL;
    size_t len = 0;
    if (cm_value_encode (payload, &bytes, &len) != 0)
        abort ();
    cm_value_t *again = NULL;
    if (cm_value_decode (bytes, len, &again) != 0 || !cm_value_equal (again, payload))
        abort ();
    cm_value_destroy (&again);
    free (bytes);
}

#define S_STACK (128 * 1024) //  about a civetweb worker's

typedef struct {
    const uint8_t *data;
    size_t size;
} s_input_t;

static void s_one (const uint8_t *data, size_t size);

static void *
s_run (void *arg)
{
    s_input_t *input = arg;
    s_one (input->data, input->size);
    return NULL;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_input_t input = {data, size};
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setstacksize (&attr, S_STACK);
    pthread_t thread;
    if (pthread_create (&thread, &attr, s_run, &input) == 0)
        pthread_join (thread, NULL);
    pthread_attr_destroy (&attr);
    return 0;
}

static void
s_one (const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    int endpoint = data[0] % S_ENDPOINTS;
    const char *body = (const char *) data + 1;
    size_t len = size - 1;

    if (endpoint == S_CONTENT_TYPE) {
        char *text = malloc (len + 1);
        memcpy (text, body, len);
        text[len] = 0;
        (void) gw_content_type_is_json (text);
        long chars = gw_utf8_chars (body, len);
        if (chars > (long) len)
            abort ();
        free (text);
        return;
    }
    gw_verdict_t verdict;
    memset (&verdict, 0, sizeof verdict);
    json_t *json = NULL;
    if (endpoint != S_REGENERATE_EMPTY && gw_body_parse (body, len, &json, &verdict) != 0) {
        s_check_verdict (&verdict);
        return;
    }
    //  The JSON <-> value conversion the gateway uses for replies and
    //  metadata must survive any parsed body.
    if (json) {
        cm_value_t *value = gw_json_to_value (json, 16);
        if (value) {
            json_t *back = gw_json_from_value (value);
            if (!back)
                abort ();
            json_decref (back);
            cm_value_destroy (&value);
        }
        (void) gw_json_depth (json);
    }
    cm_value_t *payload = cm_map_new ();
    int max_chars = 1 + (int) (len % 64) * 100; //  small limits too
    int rc;
    switch (endpoint) {
    case S_RUN_SSE: rc = gw_validate_run_sse (json, max_chars, payload, &verdict); break;
    case S_REGENERATE:
    case S_REGENERATE_EMPTY:
        rc = gw_validate_regenerate (json, max_chars, payload, &verdict);
        break;
    case S_EDIT: rc = gw_validate_edit (json, max_chars, payload, &verdict); break;
    default: rc = gw_validate_feedback (json, max_chars, payload, &verdict); break;
    }
    if (rc == 0)
        s_check_payload (payload);
    else if (rc == CM_EINVAL)
        s_check_verdict (&verdict);
    else if (rc != CM_ENOMEM)
        abort ();
    cm_value_destroy (&payload);
    json_decref (json);
    return;
}
