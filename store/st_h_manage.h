/*  st_h_manage.h: what a chat sidebar does with the caller's sessions
    (issue 15). Each is an st_handler_fn (st_ctx.h: 0 or CM_E*, nothing
    written on failure); another user's session is CM_ENOTFOUND.

    session_list    the caller's sessions, newest update first (ties: by
                    session id), limit per page (1..1000, default 100; out
                    of range: 100). next_cursor ("<updated_at ms>.<session
                    id>" of the page's last session) continues after it;
                    nil on the last page. A cursor that is not one is
                    CM_EINVAL. A session updated between two pages moves to
                    the top, so a walk may miss it or see it twice.
                    With shard_cursors true (a sharded gateway merging
                    every shard's page) each session also carries its own
                    place as "cursor".
    session_rename  title (1..CM_TITLE_MAX bytes, not blank) becomes the
                    session's title; audit "session_rename" with both
                    titles; session_updated (status session_renamed).   */
#ifndef ST_H_MANAGE_H_INCLUDED
#define ST_H_MANAGE_H_INCLUDED

#include "st_ctx.h"

int st_h_session_list (st_ctx_t *c);
int st_h_session_rename (st_ctx_t *c);

#endif
