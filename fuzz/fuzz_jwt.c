/*  fuzz_jwt: bearer-token verification takes any text, before any auth.
    The fuzzer cannot know the secret, so an accepted token is a forgery:
    abort. Each input runs on a thread with a small stack, like a civetweb
    worker's, so a parser that recurses per nesting level (libjwt's JSON)
    overflows here as it would in the gateway.                           */
#include "cm_error.h"
#include "gw_jwt.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_STACK (128 * 1024) //  about a civetweb worker's

static const char s_secret[] = "fuzz-secret-that-the-fuzzer-cannot-guess-0123456789";

static void *
s_run (void *arg)
{
    const char *token = arg;
    char user[CM_USER_MAX + 1];
    const char *why = NULL;
    int rc = gw_jwt_verify (s_secret, strlen (s_secret), token, 1700000000, user, &why);
    if (rc == 0 || rc != CM_EINVAL || !why)
        abort ();
    return NULL;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *token = malloc (size + 1);
    memcpy (token, data, size);
    token[size] = 0;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setstacksize (&attr, S_STACK);
    pthread_t thread;
    if (pthread_create (&thread, &attr, s_run, token) == 0)
        pthread_join (thread, NULL);
    pthread_attr_destroy (&attr);
    free (token);
    return 0;
}
