/*  st_h_trash.h: deletes that can be undone (issue 15).

    A delete moves the records it removes, byte for byte, into one
    tombstone of the trash DBI (docs/store.md, "Trash"), in the delete's
    txn; a restore within the undo window (st_ops_config_t.undo_ms,
    CHATMESH_UNDO_SECONDS) puts every one back, so the messages return
    with all their versions, votes, feedback and edit history. The upkeep
    purges tombstones older than the window. Tombstone keys:
      "m" \0 message_id   the messages one DELETE /api/messages/{id} removed
      "s" \0 session_id   a whole session
    The value: {kind: "message"|"session", id, session_id, user,
    deleted_at (ms), scope, ids: [message ids], rows: [[db name, key bin,
    value bin], ...]}. A session deleted again before its first tombstone
    was purged replaces that tombstone (audited as a purge).

    Each handler is an st_handler_fn (st_ctx.h: 0 or CM_E*, nothing written
    on failure); another user's records are CM_ENOTFOUND.

    message_delete   scope "following" (default: the message, every later
                     one of its branch and the branches below them,
                     st_branch_below) or "message" (only it; CM_EBADSTATE
                     for a question with versions: its branches hang under
                     it); a running
                     generation of a deleted message ends cancelled;
                     message_deleted. The reply's undo_until is the end of
                     the window.
    message_restore  the messages a delete of this id removed: CM_ENOTFOUND
                     when no tombstone holds them (never deleted, purged,
                     or their session was deleted since), CM_ECONFLICT when
                     the message exists (not deleted), CM_EBADSTATE when
                     the window has passed; message_restored.
    session_delete   the session with every message; session_updated
                     (status session_deleted).
    session_restore  the same errors as message_restore (CM_ECONFLICT: the
                     session exists); session_updated (status
                     session_restored).
    st_h_trash_session_held (for session_start, not a handler): CM_ECONFLICT
                     while a deleted session of this id can still be
                     restored, so that no new session takes its id and its
                     undo; 0 otherwise (none, or the window has passed).
    st_h_trash_purge (upkeep, not a handler) drops the tombstones deleted at
                     or before cutoff (ms), with a "purge" audit entry each. */
#ifndef ST_H_TRASH_H_INCLUDED
#define ST_H_TRASH_H_INCLUDED

#include "st_ctx.h"

int st_h_message_delete (st_ctx_t *c);
int st_h_message_restore (st_ctx_t *c);
int st_h_session_delete (st_ctx_t *c);
int st_h_session_restore (st_ctx_t *c);
int st_h_trash_purge (st_ctx_t *c, int64_t cutoff);
int st_h_trash_session_held (st_ctx_t *c, const char *session_id);

#endif
