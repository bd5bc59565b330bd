/*  st_h_sessions.h: the handlers of sessions and their messages. Each is
    an st_handler_fn (st_ctx.h: 0 or CM_E*, nothing written on failure);
    another user's session or message is CM_ENOTFOUND.

    session_start  creates the session on its first turn, adds the user
                   message and an empty assistant message with its answer
                   task; session_updated. With existing true (a sharded
                   gateway finding the session's shard) a session this
                   store neither holds nor keeps for undo is CM_ENOTFOUND
                   with CM_SHARD_ABSENT, before anything is written or
                   counted against the rate limit.
    message_edit   a question gets a new version and a new branch below it
                   (st_h_branch.h), with a new answer when the question had
                   one and trigger_regeneration is not false; an answer's
                   content is replaced in place. A history record either
                   way; message_edited (and session_updated for a new
                   answer).
    regen_create   a regeneration task for an assistant message, answering
                   the question of its branch (st_branch.h); CM_ECONFLICT
                   while one runs.
    session_get    the session with its active path; history_get: a read.
    (message_delete and the undo: st_h_trash.h; session_list and
    session_rename: st_h_manage.h; session_export: st_h_export.h.)                        */
#ifndef ST_H_SESSIONS_H_INCLUDED
#define ST_H_SESSIONS_H_INCLUDED

#include "st_ctx.h"

int st_h_session_start (st_ctx_t *c);
int st_h_message_edit (st_ctx_t *c);
int st_h_regen_create (st_ctx_t *c);
int st_h_session_get (st_ctx_t *c);
int st_h_history_get (st_ctx_t *c);

#endif
