/*  st_rows.h: the store's records as its handlers use them (layouts in
    st_db.h, keys in st_key.h): loading with the ownership check, putting,
    the binary counters (votes, rate buckets), the audit record, analytics
    counters and range scans. Internal to the store; every function runs
    in the request's txn (c->txn) and returns 0 or a CM_E* code as st_db
    does (CM_ENOTFOUND for a missing record and for another user's).

    Record maps keep the stored snake_case names; turning them into
    replies and events is st_view's job.                                 */
#ifndef ST_ROWS_H_INCLUDED
#define ST_ROWS_H_INCLUDED

#include "st_chain.h"
#include "st_ctx.h"
#include "st_key.h"

//  The fixed rate window of the per-user limits (ms).
#define ST_RATE_WINDOW_MS 60000

//  to[to_key] = from[key] when that is a string, else nil.
void st_rows_copy_str (cm_value_t *to, const char *to_key, const cm_value_t *from,
                       const char *key);

//  msg["usage"] = {prompt_tokens, completion_tokens} from a task_complete
//  payload that reports both (what the server said the answer cost);
//  without them the last answer's usage goes, so it never describes text
//  it did not count.
void st_rows_usage_set (cm_value_t *msg, const cm_value_t *payload);

//  Every (key, value) of db which whose key starts with range (NULL: the
//  whole db), in key order, as a new array of {k: bin, v: bin} maps, so
//  the caller may change the db freely while walking it. Read the items
//  with st_rows_key / st_rows_value (borrowed from the list).
int st_rows_collect (st_ctx_t *c, st_dbi_t which, const st_key_t *range, cm_value_t **out);
const cm_value_t *st_rows_key (const cm_value_t *list, size_t i);
const cm_value_t *st_rows_value (const cm_value_t *list, size_t i);
//  The map a collected value holds (new, caller owns); NULL when it does
//  not decode to a map.
cm_value_t *st_rows_decode (const cm_value_t *bin);
//  Deletes every key of db which that starts with prefix.
int st_rows_delete_prefix (st_ctx_t *c, st_dbi_t which, const st_key_t *prefix);

//  The audit record of a mutation, in the same txn as the change, with
//  details a map (taken; NULL for an empty one).
int st_rows_audit (st_ctx_t *c, const char *session_id, const char *message_id,
                   const char *action, const char *user, cm_value_t *details);
//  The same record streamed without building a map: _begin mints the
//  log id (into id, CM_ID_MAX + 1) and returns the ops' packer with the
//  fields before details packed; the caller packs exactly one value (the
//  details); _end packs the rest and puts the record.
cm_packer_t *st_rows_audit_begin (st_ctx_t *c, const char *session_id, const char *message_id,
                                  const char *action, const char *user, char *id);
//  The record ends with prev_hash, its link in the audit chain
//  (st_chain.h), whose head _end moves on; the action is counted
//  (st_analytics.h) in the same txn.
int st_rows_audit_end (st_ctx_t *c, const char *id);
//  The audit chain's head (all zero before the first chained entry) and
//  its put.
int st_rows_chain_head (st_ctx_t *c, st_chain_head_t *head);
int st_rows_chain_head_put (st_ctx_t *c, const st_chain_head_t *head);

//  A stored rate bucket: the binary record or an older msgpack map. 0 or
//  CM_EPROTO (logged).
int st_rows_rate_read (const void *data, size_t size, int64_t *start, int64_t *count,
                       int64_t *window);
//  Fixed-window token bucket: limit actions per window_ms under key
//  (limit <= 0: no limit). CM_ERATELIMIT with c->why and c->retry_after
//  set when exhausted (nothing written then); *remaining (may be NULL)
//  gets what is left after this one.
int st_rows_rate (st_ctx_t *c, const st_key_t *key, int64_t limit, int64_t window_ms,
                  int64_t *remaining);
//  The start (ms) of key's window now: c->now when it is empty or over.
int st_rows_rate_window (st_ctx_t *c, const st_key_t *key, int64_t window_ms, int64_t *start);
//  Gives back one token of key's window when that window still started at
//  window_start (a later window owes nothing); *refunded says whether it
//  did. A bucket without tokens taken is left alone.
int st_rows_rate_refund (st_ctx_t *c, const st_key_t *key, int64_t window_start, bool *refunded);
//  The caller's buckets with the request's limits: "a:" for every write,
//  "r:" as well when regeneration.
int st_rows_rate_user (st_ctx_t *c, bool regeneration);

//  The session, when the caller owns it. *session is new (caller owns).
int st_rows_session_load (st_ctx_t *c, const char *session_id, cm_value_t **session);
int st_rows_session_put (st_ctx_t *c, cm_value_t *session);

//  The messages key of message_id (msg_index), without any check.
int st_rows_message_key (st_ctx_t *c, const char *message_id, st_key_t *key);
//  The message, its key and (when session is not NULL) its session, when
//  the caller owns the session. The maps are new (caller owns).
int st_rows_message_load (st_ctx_t *c, const char *message_id, cm_value_t **message,
                          st_key_t *key, cm_value_t **session);
//  Like st_rows_message_load without decoding anything: the messages key
//  and the session id (into session_id, CM_SESSION_ID_MAX + 1), with the
//  same ownership check.
int st_rows_message_locate (st_ctx_t *c, const char *message_id, st_key_t *key,
                            char *session_id);
//  A new message record (caller owns) with a fresh id (into id_out,
//  CM_MESSAGE_ID_MAX + 1).
cm_value_t *st_rows_message_new (const char *session_id, uint64_t seq, const char *role,
                                 const char *content, int64_t now, char *id_out);
//  Puts a new message and its msg_index entry; *key gets its key.
int st_rows_message_insert (st_ctx_t *c, cm_value_t *msg, st_key_t *key);

//  Vote counts of the message at key: its votes record, or for a message
//  from before that record, the counts in the message map (msg when the
//  caller has it decoded, NULL to read it here).
int st_rows_votes_get (st_ctx_t *c, const void *key, size_t key_len, const cm_value_t *msg,
                       int64_t *ups, int64_t *downs);
int st_rows_votes_put (st_ctx_t *c, const void *key, size_t key_len, int64_t ups,
                       int64_t downs);

//  Adds delta to the session's counter (NULL: none) and, when
//  duration_ms >= 0, keeps it among the session's last regeneration times.
int st_rows_analytics_update (st_ctx_t *c, const char *session_id, const char *counter,
                              int64_t delta, int64_t duration_ms);

#endif
