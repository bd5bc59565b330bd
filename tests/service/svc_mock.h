/*  svc_mock.h: the mock OpenAI-compatible server of the service tests
    (tests/fixtures/mock_openai.py, its header says what it does) as a
    child process on a free loopback port, and the calls that script it
    and read what it received. Started before the mesh, so the mesh's
    CHATMESH_OPENAI_BASE_URL can name it (svc_mock_url).                 */
#ifndef SVC_MOCK_H_INCLUDED
#define SVC_MOCK_H_INCLUDED

#include <jansson.h>

typedef struct svc_mock svc_mock_t;

//  Starts python3 <CHATMESH_SOURCE_DIR>/tests/fixtures/mock_openai.py
//  (its log: <temp dir>/mock.log, printed when it does not come up) and
//  waits until it listens. NULL on failure (the reason is printed).
svc_mock_t *svc_mock_start (void);
//  SIGTERM, reap, remove its temp dir. Sets *mock_p to NULL.
void svc_mock_stop (svc_mock_t **mock_p);
//  "http://127.0.0.1:PORT"
const char *svc_mock_url (svc_mock_t *mock);
//  Appends plans (a JSON list of plan objects, as text) to the queue the
//  next requests stream. 0 or -1.
int svc_mock_plan (svc_mock_t *mock, const char *plans_json);
//  Every request body received so far, oldest first (a JSON array the
//  caller decrefs); NULL on failure.
json_t *svc_mock_requests (svc_mock_t *mock);
//  Waits until at least count requests arrived; 0 or -1 after timeout_ms.
int svc_mock_wait_requests (svc_mock_t *mock, size_t count, int timeout_ms);

#endif
