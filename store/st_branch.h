/*  st_branch.h: conversation branches (issue 15). An edit of a question
    adds a version of it (st_versions.h) and starts a new branch below it:
    the turns that followed it stay stored, under the version they
    followed, and come back when that version is activated again.

    Records (docs/store.md, "Branches"): messages stay where they are
    (session_id \0 seq, one ordered range per session), and a message
    written into a branch carries a tag, branch_seq and branch_version:
    the question (by seq) and the version of it the message follows. A
    message without a tag, or written before branches existed, is on the
    trunk. A branch point is a question with more than one version.

    Tags are never rewritten, so an edit writes no record but the question
    and its versions: the messages that followed a question before its
    first edit keep the tag they had (the question's own branch), and
    resolving them gives version 1 of the question. The rule, in seq order:
    a message's branch is its tag, until a branch point already stands in
    that branch before it; then it is (that branch point, version 1), and
    the rule applies again. So every resolved branch holds at most one
    branch point, its last message.

    The active path is the trunk and every branch (q, v) whose question is
    on the path and shows version v. A message appended to the path (a new
    turn, a new answer below an edited question) takes the branch its end
    continues (st_branch_tail).

    The pure functions work on st_branch_item_t arrays in seq order; the
    loader reads and decodes a session's messages for them. Every function
    that returns int gives 0 or a CM_E* code.                            */
#ifndef ST_BRANCH_H_INCLUDED
#define ST_BRANCH_H_INCLUDED

#include "st_ctx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    //  In: the message as stored. valid false: it did not decode (never
    //  on the path, in no branch).
    bool valid;
    bool question;  //  role user
    uint64_t seq;
    uint64_t tag_seq; //  0: the trunk (seqs start at 1)
    uint32_t tag_version;
    uint32_t active, count; //  its versions (st_versions_active/_count)
    //  Out (st_branch_resolve): its branch, and whether it is shown.
    uint64_t branch_seq;
    uint32_t branch_version;
    bool on_path;
} st_branch_item_t;

//  A branch point: a question with more than one version.
bool st_branch_point (const st_branch_item_t *item);

//  Sets branch_* and on_path of every item (n items in seq order). 0 or
//  CM_ENOMEM.
int st_branch_resolve (st_branch_item_t *items, size_t n);

//  The branch a message appended to the active path belongs to: below the
//  path's last message when that is a branch point (its active version),
//  else that message's branch; the trunk (0, 0) for an empty path.
void st_branch_tail (const st_branch_item_t *items, size_t n, uint64_t *seq, uint32_t *version);

//  below[j] = true for item i and every item after it in its branch or in
//  a branch under one of those (what a delete of i with every later turn
//  takes), false for the rest. Resolved items.
void st_branch_below (const st_branch_item_t *items, size_t n, size_t i, bool *below);

//  The messages item i follows, first to last, into index (room for n):
//  their indexes, and in version the version of each that i follows (a
//  branch point's may differ from the one it shows). Returns how many.
size_t st_branch_above (const st_branch_item_t *items, size_t n, size_t i, size_t *index,
                        uint32_t *version);

//  A session's messages, decoded, with their items resolved.
typedef struct {
    cm_value_t *list;          //  st_rows_collect's {k, v} list
    cm_value_t **msgs;         //  decoded; NULL where items[i].valid is false
    st_branch_item_t *items;   //  one per list entry
    size_t n;
} st_branch_session_t;

int st_branch_load (st_ctx_t *c, const char *session_id, st_branch_session_t *out);
void st_branch_free (st_branch_session_t *s);
//  The index of the message with that id; n when it is not there.
size_t st_branch_find (const st_branch_session_t *s, const char *message_id);
//  Tags msg (in memory) as a message of branch (seq, version); the trunk
//  (seq 0) leaves it untagged.
void st_branch_tag (cm_value_t *msg, uint64_t seq, uint32_t version);
//  Where a new turn of the session goes (st_branch_tail): the trunk
//  without reading anything unless the session was ever branched
//  (session["branched"], set by the first edit of a question).
int st_branch_session_tail (st_ctx_t *c, const cm_value_t *session, uint64_t *seq,
                            uint32_t *version);

//  The messages target_id follows in its branch, first to last, each as
//  {role, content} with the content of the version it follows, ending at
//  original_id when that is among them (the conversation a generation of
//  target answers; a new array into *out).
int st_branch_conversation (st_ctx_t *c, const char *session_id, const char *target_id,
                            const char *original_id, cm_value_t **out);
//  The question the assistant message message_id answers, in its branch:
//  its id (into question_id, CM_MESSAGE_ID_MAX + 1) and the text of the
//  version the answer follows (a new string, caller frees). CM_EINVAL
//  (c->why) when no question precedes it.
int st_branch_question_of (st_ctx_t *c, const char *session_id, const char *message_id,
                           char *question_id, char **text);

#endif
