/*  st_key.h: every key layout of st_db.h built and taken apart in one
    place, and the ids the store mints, so that no caller lays out or
    copies a key by hand.

    A key is an st_key_t: its bytes and length, at most ST_KEY_MAX. The
    builders return 0, or CM_EINVAL when the parts would not fit (the
    request schema caps every part far below ST_KEY_MAX, so only a bug or
    a damaged record gets there); a key is never cut. st_key_set copies a
    key stored as a value (msg_index holds messages keys) and answers
    CM_EDB for one longer than ST_KEY_MAX, which only damage can write.  */
#ifndef ST_KEY_H_INCLUDED
#define ST_KEY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_KEY_MAX 1024

typedef struct {
    size_t len;
    char bytes[ST_KEY_MAX];
} st_key_t;

//  A copy of len bytes of a stored key. 0 or CM_EDB (too long).
int st_key_set (st_key_t *key, const void *data, size_t len);

//  a \0 b: user_sessions (user, session id), feedback (message id, user).
int st_key_pair (st_key_t *key, const char *a, const char *b);
//  id \0: the range prefix of an id's records in messages (a session id),
//  feedback and history (a message id).
int st_key_prefix (st_key_t *key, const char *id);
//  messages: session_id \0 seq(8 BE).
int st_key_message (st_key_t *key, const char *session_id, uint64_t seq);
//  The seq of a messages key whose session id is prefix_len - 1 bytes
//  (key_len must be prefix_len + 8).
uint64_t st_key_message_seq (const void *key, size_t prefix_len);
//  The session id of a messages key, into session_id (CM_SESSION_ID_MAX
//  + 1). 0 or CM_EDB for a key of another shape.
int st_key_message_session (const st_key_t *key, char *session_id);
//  history: message_id \0 ms(8 BE) seq(8 BE) hist_id.
int st_key_history (st_key_t *key, const char *message_id, int64_t ms, uint64_t seq,
                    const char *hist_id);
//  audit: ms(8 BE) seq(8 BE) log_id.
int st_key_audit (st_key_t *key, int64_t ms, uint64_t seq, const char *log_id);
//  The ms an audit key starts with; -1 for a key too short to hold one.
int64_t st_key_audit_ms (const void *key, size_t len);
//  task_queue: created_ms(8 BE) task_id.
int st_key_queue (st_key_t *key, int64_t created_ms, const char *task_id);
//  The task id of a task_queue key, into task_id (CM_ID_MAX + 1). 0 or
//  CM_EDB for a key of another shape.
int st_key_queue_task (const void *key, size_t len, char *task_id);
//  rate: "a:<user>" (every write), "r:<user>" (regenerations too).
int st_key_rate_user (st_key_t *key, bool regeneration, const char *user);

//  An id stored as a value (active: a task id) into id (CM_ID_MAX + 1),
//  NUL-terminated. 0 or CM_EDB when longer than CM_ID_MAX.
int st_key_id_set (char *id, const void *data, size_t len);

//  A v4 uuid (CM_UUID_LEN hex digits and a NUL) as cm_uuid makes it, from
//  a per-thread pool of random bytes. Any thread.
void st_key_uuid (char *buffer);
//  "<prefix>_<uuid>" (cm_id_new's format) into buffer (CM_ID_MAX + 1).
void st_key_id_new (char *buffer, const char *prefix);

#endif
