/*  svc_harness.h: start the real four binaries and talk HTTP/SSE to them.

    A mesh lives in a fresh temp dir (LMDB data, ipc:// sockets, one log per
    service) with the gateway on a random free loopback port. Tokens are
    minted with libjwt through tests/tok_util.h, independently of the
    gateway's code, so a bug in the gateway's JWT handling cannot hide
    behind a shared one. The binaries are found through CHATMESH_BIN_DIR
    (set by ctest). Raw-socket clients are in svc_raw.h.

    Every service, extra instance and second gateway is started, stopped
    and awaited by the same three internal steps (fork/exec with the
    mesh's settings, signal-then-bounded-reap with SIGKILL after 10 s,
    poll /readyz), so they all behave alike on failure.                  */
#ifndef SVC_HARNESS_H_INCLUDED
#define SVC_HARNESS_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct svc_mesh svc_mesh_t;

//  Starts store, broadcaster, regenerator and gateway with the extra
//  "NAME=value" settings in env (NULL-terminated, may be NULL), and waits
//  until /readyz answers 200. NULL on failure (the reason is printed).
svc_mesh_t *svc_mesh_start (const char *const *env);
//  The same with 1 or 2 broadcasters. With 2, "broadcaster" and
//  "broadcaster2" (svc_mesh_kill/spawn names) each bind their own sockets;
//  the store pushes every event to both and gateways subscribe to both
//  (and ask either's history), through comma lists in the mesh's
//  CHATMESH_EVENTS_IN/EVENTS_OUT/HISTORY_ENDPOINT.
svc_mesh_t *svc_mesh_start_broadcasters (int broadcasters, const char *const *env);
//  The mesh without its own store process (one broadcaster): the caller
//  runs the store (e.g. svc_cluster.h's nodes) and env names it
//  (CHATMESH_STORE_ENDPOINT: the nodes' comma list) and where the store
//  nodes push events (CHATMESH_EVENTS_IN_ENDPOINT, the broadcaster binds
//  it). svc_mesh_kill/spawn of "store" then answer -1.
svc_mesh_t *svc_mesh_start_external_store (const char *const *env);
//  SIGTERM to every service, wait, remove the temp dir (kept when
//  CHATMESH_KEEP_TEST_DIR is set). Sets *mesh_p to NULL.
void svc_mesh_stop (svc_mesh_t **mesh_p);

//  Sends `signal` to a service ("store", ...) and waits until it exited.
int svc_mesh_kill (svc_mesh_t *mesh, const char *service, int signal);
//  The wait status (as waitpid gives it) of the service's last exit seen by
//  svc_mesh_kill, or -1 when it has not exited yet.
int svc_mesh_exit_status (svc_mesh_t *mesh, const char *service);
//  (Re)starts one service with the mesh's settings. 0 or -1.
int svc_mesh_spawn (svc_mesh_t *mesh, const char *service);
//  Starts one more instance of a service (e.g. a second "regenerator")
//  with the mesh's settings plus the "NAME=value" settings in env (may be
//  NULL). Its log is <dir>/log/<service>-<handle + 2>.log. Returns a
//  handle >= 0, or -1. svc_mesh_stop ends it too.
int svc_mesh_spawn_extra (svc_mesh_t *mesh, const char *service, const char *const *env);
//  Sends signal to an extra instance and waits until it exited. 0 or -1.
int svc_mesh_kill_extra (svc_mesh_t *mesh, int handle, int signal);
//  pid of a running extra instance, or -1.
int svc_mesh_extra_pid (svc_mesh_t *mesh, int handle);
//  Polls GET path until it answers `status` or timeout_ms passes. 0 or -1.
int svc_mesh_wait_status (svc_mesh_t *mesh, const char *path, long status, int timeout_ms);
//  "http://127.0.0.1:PORT"
const char *svc_mesh_url (svc_mesh_t *mesh);
//  Starts a second gateway with the mesh's settings plus the "NAME=value"
//  settings in env (NULL-terminated, may be NULL) on another free port
//  (log: <dir>/log/gateway2.log) and waits until its /readyz answers 200.
//  svc_mesh_stop stops it too. 0 or -1.
int svc_mesh_spawn_gateway2 (svc_mesh_t *mesh, const char *const *env);
//  "http://127.0.0.1:PORT" of the second gateway ("" before it started).
const char *svc_mesh_url2 (svc_mesh_t *mesh);
//  The temp dir (logs are <dir>/log/<service>.log).
const char *svc_mesh_dir (svc_mesh_t *mesh);
//  pid of a running service, or -1.
int svc_mesh_pid (svc_mesh_t *mesh, const char *service);
//  The gateway's HTTP port, and the HS256 secret of the mesh (for tests
//  that forge or hand-craft tokens).
int svc_mesh_port (svc_mesh_t *mesh);
//  A loopback TCP port free at the time of the call, or -1.
int svc_free_port (void);
const char *svc_mesh_secret (svc_mesh_t *mesh);

//  cmocka fixtures (setup and teardown functions, group or per test), so no
//  test file writes its own. svc_fixture_start: svc_mesh_start (env) into
//  *state; 0, or -1 when the mesh did not start (cmocka then skips the
//  tests). svc_fixture_setup: the same with no extra settings.
//  svc_fixture_teardown: svc_mesh_stop of the mesh in *state; always 0.
int svc_fixture_start (void **state, const char *const *env);
int svc_fixture_setup (void **state);
int svc_fixture_teardown (void **state);

//  A token for user, valid ttl seconds (negative: already expired).
//  Caller frees.
char *svc_token (svc_mesh_t *mesh, const char *user, long ttl);

//  A token signed with the mesh's secret whose claims are exactly the JSON
//  object claims_json (e.g. no exp, a future nbf), with alg "HS256",
//  "HS512", "none", ... NULL on failure. Caller frees.
char *svc_token_claims (svc_mesh_t *mesh, const char *claims_json, const char *alg);

typedef struct {
    long status;
    char *body;      //  NUL-terminated
    json_t *json;    //  parsed body or NULL
    char *headers;   //  raw response headers
} svc_response_t;

//  One HTTP request. body (may be NULL) goes as application/json unless
//  content_type says otherwise. token NULL: no Authorization header.
//  extra_header: one more "Name: value" line or NULL. 0 or -1 (transport).
int svc_http_ex (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
                 const char *body, const char *content_type, const char *extra_header,
                 svc_response_t *response);
//  svc_http_ex against another base URL (e.g. svc_mesh_url2).
int svc_http_at (const char *base_url, const char *method, const char *path, const char *token,
                 const char *body, const char *content_type, const char *extra_header,
                 svc_response_t *response);
int svc_http (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
              const char *body, svc_response_t *response);
//  svc_http with the caller's own client timeout (load and fault tests
//  count a request past it as hung). Returns libcurl's result: CURLE_OK,
//  CURLE_OPERATION_TIMEDOUT, or another transport failure.
int svc_http_timed (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
                    const char *body, long timeout_ms, svc_response_t *response);
void svc_response_free (svc_response_t *response);
//  Value of a response header (case-insensitive name) into buffer; 0 or -1.
int svc_response_header (const svc_response_t *response, const char *name, char *buffer,
                         size_t size);

//  SSE reader on a background thread.
typedef struct svc_sse svc_sse_t;
typedef struct {
    char id[64];
    char event[64];
    char *data;   //  the data line(s)
    json_t *json; //  parsed data or NULL
    double received_ms; //  CLOCK_MONOTONIC when the event was complete
} svc_event_t;

//  CLOCK_MONOTONIC in milliseconds, the clock of received_ms.
double svc_now_ms (void);

//  Opens GET path (with its query string). token NULL: none sent (put it in
//  the query instead); last_event_id NULL: no Last-Event-ID header. Waits
//  until the response headers arrived. NULL on failure.
svc_sse_t *svc_sse_open (svc_mesh_t *mesh, const char *path, const char *token,
                         const char *last_event_id);
//  The same on the gateway at base_url (an extra instance).
svc_sse_t *svc_sse_open_at (const char *base_url, const char *path, const char *token,
                            const char *last_event_id);
//  Waits until an event of `type` (NULL: any) arrives after the last one
//  returned, and returns it (borrowed, valid until svc_sse_close). NULL on
//  timeout.
const svc_event_t *svc_sse_wait (svc_sse_t *sse, const char *type, int timeout_ms);
//  All events so far (borrowed snapshot count; events never move).
size_t svc_sse_count (svc_sse_t *sse);
const svc_event_t *svc_sse_at (svc_sse_t *sse, size_t index);
//  Number of ": keepalive"-style comment lines seen.
size_t svc_sse_comments (svc_sse_t *sse);
//  True once the server closed the stream.
bool svc_sse_closed (svc_sse_t *sse);
long svc_sse_status (svc_sse_t *sse);
void svc_sse_close (svc_sse_t **sse_p);

//  POST /api/run_sse/{session} with {"query": query}: one user turn,
//  unchecked (sa_turn in svc_api_util.h checks the answer). The HTTP
//  status, 0 when no answer came; *response as svc_http leaves it.
long svc_turn_at (const char *base_url, const char *token, const char *session,
                  const char *query, svc_response_t *response);
long svc_turn (svc_mesh_t *mesh, const char *token, const char *session, const char *query,
               svc_response_t *response);

//  The string at object[key] (key2 not NULL: object[key][key2]), or NULL
//  when missing or not a string. Borrowed from object.
const char *svc_json_str (const json_t *object, const char *key, const char *key2);

//  Reads a whole file (logs). Caller frees. NULL when missing.
char *svc_read_file (const char *path);
//  svc_read_file for binary files: *size (may be NULL) gets the length
//  (the bytes are NUL-terminated too). Caller frees. NULL when missing.
char *svc_read_bytes (const char *path, size_t *size);

//  Runs a shell command (popen); its stdout (add 2>&1 for stderr too) into
//  output, NUL-terminated and cut at size - 1 bytes (output NULL: read and
//  dropped). The exit code, or -1 when it could not run or did not exit.
int svc_run (const char *command, char *output, size_t size);
//  `chatmesh-store --verify dir` (from CHATMESH_BIN_DIR), stdout and
//  stderr into output as svc_run. Its exit code (0: every record is sound).
int svc_store_verify (const char *dir, char *output, size_t size);

//  A broadcaster's ping (suffix "" for "broadcaster", "-2" for
//  "broadcaster2"): the events it took from the store since it started,
//  or -1 when it does not answer.
long long svc_broadcaster_events_in (svc_mesh_t *mesh, const char *suffix);

#endif
