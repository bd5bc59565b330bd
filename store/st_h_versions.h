/*  st_h_versions.h: answer versions in the handlers (the records are
    st_versions.h's; docs/store.md, "Versions").

    A finished regeneration adds a version of its message instead of
    overwriting it, in the txn that completes the task; version_activate
    (st_handler_fn, st_ctx.h) switches the version a turn shows. Every
    function returns 0 or a CM_E* code and runs in the request's txn.   */
#ifndef ST_H_VERSIONS_H_INCLUDED
#define ST_H_VERSIONS_H_INCLUDED

#include "st_rows.h"

//  The answer of a finished task goes onto msg (in memory; the caller puts
//  it under mkey): `fields` holds the answer's version fields. A first
//  answer (an "answer" task, or a message whose only version has no text,
//  because its first answer never came) is written in place; any other
//  becomes version count + 1 and the active one, the earlier versions
//  kept. A "continue" task's answer grows the version it continues (the
//  task's continues_version, made active again if another was shown) in
//  place: the fields given replace the version's, the others stay, and
//  finish_reason goes unless fields has one. CM_EBADSTATE (c->why) when
//  msg already has CM_VERSIONS_MAX.
int st_h_versions_answer (st_ctx_t *c, const cm_value_t *task, const st_key_t *mkey,
                          cm_value_t *msg, const cm_value_t *fields);
//  True when st_h_versions_answer writes task's answer over msg's shown
//  version instead of adding one.
bool st_h_versions_in_place (const cm_value_t *task, const cm_value_t *msg);

//  CM_EBADSTATE (c->why) when a regeneration of msg could not be kept as
//  a new version (it has CM_VERSIONS_MAX already): checked on creation.
int st_h_versions_room (st_ctx_t *c, const cm_value_t *msg);

//  version_activate {message_id, version}: the turn shows that version
//  from now on. CM_ENOVERSION when the message has no such version;
//  activating the active one changes nothing (changed: false, no event).
//  Otherwise audited (version_activate) and announced (version_activated).
int st_h_version_activate (st_ctx_t *c);

//  The vote counts of every version of the message at key, summed (a
//  session's analytics).
int st_h_versions_votes_total (st_ctx_t *c, const void *key, size_t key_len, int64_t *ups,
                               int64_t *downs);

#endif
