#include "svc_mock.h"
#include "svc_harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct svc_mock {
    pid_t pid;
    char dir[256];
    char url[64];
};

static void
s_print_log (const svc_mock_t *mock)
{
    char path[300];
    snprintf (path, sizeof path, "%s/mock.log", mock->dir);
    char *log = svc_read_file (path);
    fprintf (stderr, "mock_openai log:\n%s\n", log ? log : "(none)");
    free (log);
}

svc_mock_t *
svc_mock_start (void)
{
    const char *source_dir = getenv ("CHATMESH_SOURCE_DIR");
    if (!source_dir) {
        fprintf (stderr, "svc_mock: CHATMESH_SOURCE_DIR is not set\n");
        return NULL;
    }
    svc_mock_t *mock = calloc (1, sizeof *mock);
    snprintf (mock->dir, sizeof mock->dir, "/tmp/chatmesh-mock-XXXXXX");
    if (!mkdtemp (mock->dir)) {
        fprintf (stderr, "svc_mock: mkdtemp: %s\n", strerror (errno));
        free (mock);
        return NULL;
    }
    char script[600], port_file[300], log[300];
    snprintf (script, sizeof script, "%s/tests/fixtures/mock_openai.py", source_dir);
    snprintf (port_file, sizeof port_file, "%s/port", mock->dir);
    snprintf (log, sizeof log, "%s/mock.log", mock->dir);
    mock->pid = fork ();
    if (mock->pid == 0) {
        FILE *out = freopen (log, "a", stderr);
        if (out)
            dup2 (fileno (stderr), STDOUT_FILENO);
        execlp ("python3", "python3", script, "--port-file", port_file, (char *) NULL);
        fprintf (stderr, "svc_mock: cannot exec python3: %s\n", strerror (errno));
        _exit (127);
    }
    //  The script renames the port file into place once it listens.
    for (double until = svc_now_ms () + 10000; mock->pid > 0 && svc_now_ms () < until;) {
        char *port = svc_read_file (port_file);
        if (port && atoi (port) > 0) {
            snprintf (mock->url, sizeof mock->url, "http://127.0.0.1:%d", atoi (port));
            free (port);
            return mock;
        }
        free (port);
        if (waitpid (mock->pid, NULL, WNOHANG) == mock->pid)
            mock->pid = 0;
        usleep (20 * 1000);
    }
    fprintf (stderr, "svc_mock: the mock server did not come up\n");
    s_print_log (mock);
    svc_mock_stop (&mock);
    return NULL;
}

void
svc_mock_stop (svc_mock_t **mock_p)
{
    svc_mock_t *mock = *mock_p;
    if (!mock)
        return;
    if (mock->pid > 0) {
        kill (mock->pid, SIGTERM);
        waitpid (mock->pid, NULL, 0);
    }
    char command[300];
    snprintf (command, sizeof command, "rm -rf '%s'", mock->dir);
    svc_run (command, NULL, 0);
    free (mock);
    *mock_p = NULL;
}

const char *
svc_mock_url (svc_mock_t *mock)
{
    return mock->url;
}

int
svc_mock_plan (svc_mock_t *mock, const char *plans_json)
{
    svc_response_t response;
    int rc = svc_http_at (mock->url, "POST", "/_mock/plans", NULL, plans_json, NULL, NULL,
                          &response);
    long status = response.status;
    svc_response_free (&response);
    return rc == 0 && status == 200 ? 0 : -1;
}

json_t *
svc_mock_requests (svc_mock_t *mock)
{
    svc_response_t response;
    int rc = svc_http_at (mock->url, "GET", "/_mock/requests", NULL, NULL, NULL, NULL,
                          &response);
    json_t *requests = rc == 0 && response.status == 200
                           ? json_incref (json_object_get (response.json, "requests"))
                           : NULL;
    svc_response_free (&response);
    return requests;
}

int
svc_mock_wait_requests (svc_mock_t *mock, size_t count, int timeout_ms)
{
    for (double until = svc_now_ms () + timeout_ms; svc_now_ms () < until;) {
        json_t *requests = svc_mock_requests (mock);
        size_t got = json_array_size (requests);
        json_decref (requests);
        if (got >= count)
            return 0;
        usleep (20 * 1000);
    }
    return -1;
}
