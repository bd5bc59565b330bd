/*  svc_store_diskfull: the store on a full disk (issue 26), through the
    real binaries and HTTP. The store runs on a 4 MiB tmpfs (mounting one
    needs root: otherwise the test exits 77, skipped), filled twice: by a
    filler file, then by the data itself. Writes answer 200 or 507
    insufficient_storage, never anything else; /readyz says writes are
    refused; /metrics counts the refusals; once space is freed writes work
    again without a restart; every acknowledged write is there afterwards
    and the store verifies.                                              */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_tmpfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_TURNS 2000
#define S_SKIP 77

static const char *s_env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0",
                              "CHATMESH_LOG_LEVEL=notice", NULL};

//  ---------------------------------------------------------------------------
//  Disk full

typedef struct {
    svc_mesh_t *mesh;
    char *token;
    char *query;
    int acked;                   //  turns answered 200
    char acked_ids[S_MAX_TURNS][32];
    int refused;                 //  answered 507
} s_disk_t;

//  Turns until one is refused with 507 (or max turns); every answer must
//  be 200 or 507 insufficient_storage. Returns the number of 507s.
static int
s_fill (s_disk_t *d, const char *prefix, int max)
{
    int refused = 0;
    for (int i = 0; i < max && !refused; i++) {
        char session[32];
        snprintf (session, sizeof session, "%s%d", prefix, i);
        svc_response_t r;
        long status = svc_turn (d->mesh, d->token, session, d->query, &r);
        if (status == 200) {
            assert_true (d->acked < S_MAX_TURNS);
            snprintf (d->acked_ids[d->acked++], 32, "%s", session);
        }
        else {
            if (status != 507)
                fail_msg ("a write on a full disk answered %ld: %.300s", status,
                          r.body ? r.body : "");
            assert_string_equal (json_string_value (json_object_get (r.json, "code")),
                                 "insufficient_storage");
            refused++;
        }
        svc_response_free (&r);
    }
    d->refused += refused;
    return refused;
}

//  /readyz: 503 naming the refused writes.
static void
s_assert_not_ready (s_disk_t *d)
{
    svc_response_t r;
    assert_int_equal (svc_http (d->mesh, "GET", "/readyz", NULL, NULL, &r), 0);
    assert_int_equal (r.status, 503);
    assert_string_equal (json_string_value (json_object_get (r.json, "store_writes")),
                         "refused_disk_full");
    assert_non_null (strstr (r.body, "disk is full"));
    svc_response_free (&r);
}

//  Writes work again, without a restart, once space is freed.
static void
s_assert_writes_back (s_disk_t *d, const char *session)
{
    assert_int_equal (svc_mesh_wait_status (d->mesh, "/readyz", 200, 20000), 0);
    svc_response_t r;
    assert_int_equal (svc_turn (d->mesh, d->token, session, "a small question", &r), 200);
    svc_response_free (&r);
    snprintf (d->acked_ids[d->acked++], 32, "%s", session);
}

static svc_tmpfs_t s_fs;

//  A failed test leaves no tmpfs behind.
static int
s_unmount (void **state)
{
    (void) state;
    svc_tmpfs_unmount (&s_fs);
    return 0;
}

static void
test_disk_full (void **state)
{
    (void) state;
    char why[300];
    if (svc_tmpfs_mount (&s_fs, "svc_tmpfs_", 4, why, sizeof why)) {
        fprintf (stderr, "skipped: %s\n", why);
        exit (S_SKIP);
    }
    const char *mnt = s_fs.path;
    char store_dir[600], filler[600], ballast[600];
    snprintf (store_dir, sizeof store_dir, "CHATMESH_STORE_DIR=%s/store", mnt);
    snprintf (filler, sizeof filler, "%s/filler", mnt);
    snprintf (ballast, sizeof ballast, "%s/ballast", mnt);
    const char *env[] = {s_env[0], s_env[1], s_env[2], store_dir, NULL};
    static s_disk_t d;
    d.mesh = svc_mesh_start (env);
    assert_non_null (d.mesh);
    d.token = svc_token (d.mesh, "disk_ann", 3600);
    d.query = malloc (8001);
    for (int i = 0; i < 8000; i++)
        d.query[i] = (char) ('a' + i % 26);
    d.query[8000] = 0;

    //  1. A filler file takes the disk.
    assert_int_equal (s_fill (&d, "pre_", 10), 0);
    assert_int_equal (svc_tmpfs_fill (filler), 0);
    assert_int_equal (s_fill (&d, "filler_", 200), 1);
    s_assert_not_ready (&d);
    svc_response_t r;
    assert_int_equal (svc_http (d.mesh, "GET", "/metrics", NULL, NULL, &r), 0);
    assert_non_null (strstr (r.body, "chatmesh_gateway_backend_errors_total{code=\"ENOSPC\"}"));
    assert_non_null (strstr (r.body, "status=\"507\""));
    svc_response_free (&r);
    assert_int_equal (unlink (filler), 0);
    s_assert_writes_back (&d, "after_filler");

    //  2. The data itself takes the disk; a ballast file is what is freed.
    int fd = open (ballast, O_WRONLY | O_CREAT, 0600);
    assert_true (fd >= 0);
    static char mib[3 << 19]; //  1.5 MiB: freed, the disk is above its low mark
    assert_int_equal (write (fd, mib, sizeof mib), (ssize_t) sizeof mib);
    close (fd);
    assert_int_equal (s_fill (&d, "data_", S_MAX_TURNS - d.acked - 2), 1);
    s_assert_not_ready (&d);
    assert_int_equal (unlink (ballast), 0);
    s_assert_writes_back (&d, "after_data");

    char log[700];
    snprintf (log, sizeof log, "%s/log/store.log", svc_mesh_dir (d.mesh));
    char *text = svc_read_file (log);
    assert_non_null (strstr (text, "commit refused: the disk holding"));
    free (text);

    //  Every acknowledged turn is there.
    for (int i = 0; i < d.acked; i++) {
        char path[300];
        snprintf (path, sizeof path, "/api/sessions/%s", d.acked_ids[i]);
        assert_int_equal (svc_http (d.mesh, "GET", path, d.token, NULL, &r), 0);
        if (r.status != 200)
            fail_msg ("acknowledged session %s: %ld %.200s", d.acked_ids[i], r.status, r.body);
        char head[65];
        snprintf (head, sizeof head, "%s", d.query);
        if (!strstr (r.body, head) && !strstr (r.body, "a small question"))
            fail_msg ("acknowledged session %s lost its question", d.acked_ids[i]);
        svc_response_free (&r);
    }
    assert_true (d.acked > 20);
    assert_int_equal (d.refused, 2);
    char output[16384];
    assert_int_equal (svc_store_verify (store_dir + strlen ("CHATMESH_STORE_DIR="), output,
                                        sizeof output),
                      0);
    free (d.query);
    free (d.token);
    svc_mesh_stop (&d.mesh);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_disk_full, s_unmount),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
