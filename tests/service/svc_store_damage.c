/*  svc_store_damage: the store on a damaged file (issue 26), through the
    real binaries and HTTP. One byte flipped inside a stored message text
    (found by scanning data.mdb for the text, the store stopped): the
    session read answers 500 data_corrupted without the text, the store
    logs the db and key, `chatmesh-store --verify` exits 1 naming the
    messages key, and the untouched copy verifies with 0.                */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *s_env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0",
                              "CHATMESH_LOG_LEVEL=notice", NULL};

static void
test_flipped_byte (void **state)
{
    (void) state;
    svc_mesh_t *mesh = svc_mesh_start (s_env);
    assert_non_null (mesh);
    char *token = svc_token (mesh, "flip_ann", 3600);
    const char *text = "which mineral is quartz, and which is feldspar";
    svc_response_t r;
    assert_int_equal (svc_turn (mesh, token, "flip_s1", text, &r), 200);
    svc_response_free (&r);
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/flip_s1", token, NULL, &r), 0);
    assert_int_equal (r.status, 200);
    assert_non_null (strstr (r.body, text));
    svc_response_free (&r);
    assert_int_equal (svc_mesh_kill (mesh, "store", SIGTERM), 0);

    char dir[600], data[700], copy[600], command[2048], output[16384];
    snprintf (dir, sizeof dir, "%s/store", svc_mesh_dir (mesh));
    snprintf (data, sizeof data, "%s/data.mdb", dir);
    snprintf (copy, sizeof copy, "%s/pristine", svc_mesh_dir (mesh));
    snprintf (command, sizeof command, "mkdir -p %s && cp %s %s/", copy, data, copy);
    assert_int_equal (system (command), 0);

    //  The user message's record: its key (session \0 seq, 8 bytes BE) is
    //  followed by the value holding the text, so flip the text right
    //  after the nearest messages key.
    size_t size;
    char *bytes = svc_read_bytes (data, &size);
    assert_non_null (bytes);
    const char key[] = "flip_s1\0\0\0\0\0\0\0\0";
    size_t key_len = sizeof key - 1;
    long flip = -1;
    for (char *p = bytes; flip < 0 && (p = memmem (p, size - (size_t) (p - bytes), text,
                                                   strlen (text)));
         p++) {
        for (char *k = p - key_len; k > bytes && k > p - 300; k--)
            if (memcmp (k, key, key_len) == 0) {
                flip = (long) (p - bytes) + (long) (strstr (text, "quartz") - text);
                break;
            }
    }
    assert_true (flip > 0);
    free (bytes);
    int fd = open (data, O_WRONLY);
    assert_true (fd >= 0);
    char flipped = 'Q'; //  "quartz" -> "Quartz"
    assert_int_equal (pwrite (fd, &flipped, 1, flip), 1);
    close (fd);

    assert_int_equal (svc_store_verify (dir, output, sizeof output), 1);
    assert_non_null (strstr (output, "damaged: messages key \"flip_s1\\x00"));
    assert_non_null (strstr (output, "checksum mismatch"));
    assert_null (strstr (output, "Quartz"));
    assert_int_equal (svc_store_verify (copy, output, sizeof output), 0);
    assert_non_null (strstr (output, " 0 damaged"));

    assert_int_equal (svc_mesh_spawn (mesh, "store"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/flip_s1", token, NULL, &r), 0);
    assert_int_equal (r.status, 500);
    assert_non_null (r.json);
    assert_string_equal (json_string_value (json_object_get (r.json, "code")),
                         "data_corrupted");
    assert_null (strstr (r.body, "uartz"));
    svc_response_free (&r);
    char log[700];
    snprintf (log, sizeof log, "%s/log/store.log", svc_mesh_dir (mesh));
    char *text_log = svc_read_file (log);
    assert_non_null (text_log);
    assert_non_null (strstr (text_log, "damaged record in messages, key \"flip_s1\\x00"));
    free (text_log);
    free (token);
    svc_mesh_stop (&mesh);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_flipped_byte),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
