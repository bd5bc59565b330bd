/*  st_h_export.h: a session as a document the user keeps (issue 15).

    session_export (an st_handler_fn, a read): format "json" (default) is
    the whole tree: every message in order with every one of its versions
    (content, model, regenerated, edited, created_at and that version's
    votes) and which one is active; "markdown" is the active path as
    Markdown text: "# title", then per turn "## User" / "## Assistant"
    (with "(version i of n)" when it has more than one) and its content.
    Another format is CM_EINVAL; another user's session CM_ENOTFOUND.
    The reply, like every store reply, must fit CM_MAX_MESSAGE_BYTES.   */
#ifndef ST_H_EXPORT_H_INCLUDED
#define ST_H_EXPORT_H_INCLUDED

#include "st_ctx.h"

int st_h_session_export (st_ctx_t *c);

#endif
