/*  st_h_branch.h: branches in the handlers (the rule is st_branch.h's;
    docs/store.md, "Branches").

    An edit of a question adds a version of it and starts a new branch
    below it, in the edit's txn: the question's record takes the new
    version (st_versions_add), the session is marked branched, and with a
    regeneration asked for, a new empty answer is appended to the new
    branch with its "edit" task. The turns that followed stay stored, in
    the branch of the version they followed. Nothing else is rewritten, so
    every message id a client holds stays valid.                       */
#ifndef ST_H_BRANCH_H_INCLUDED
#define ST_H_BRANCH_H_INCLUDED

#include "st_ctx.h"
#include "st_key.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint32_t version;                           //  the question's new version
    uint32_t count;                             //  its versions now
    char answer_id[CM_MESSAGE_ID_MAX + 1];      //  the new branch's answer, "" without
    char task_id[CM_ID_MAX + 1];                //  its task, "" without
} st_h_branch_edit_t;

//  The edit of question msg (at mkey, of session) to content, with the
//  checks first: CM_EBADSTATE (c->why) when the question is not on the
//  active path or has CM_VERSIONS_MAX versions, CM_ECONFLICT when trigger
//  and the answer below it on the path is being generated (the new branch
//  would hide a running generation), then the rate limit (a regeneration
//  when trigger and the question has an answer below it: only then is one
//  made). Puts msg and session; *out says what was made.
int st_h_branch_edit (st_ctx_t *c, cm_value_t *msg, const st_key_t *mkey, cm_value_t *session,
                      const char *content, bool trigger, st_h_branch_edit_t *out);

#endif
