/*  st_h_feedback.h: the vote handlers (st_handler_fn, st_ctx.h).

    feedback_put   one vote per user per message (a new one replaces the
                   old), counted in the message's votes record without
                   rewriting the message: the hottest write; announces
                   feedback_submitted.
    feedback_delete  withdraws the caller's vote on the version the message
                   shows (votes on other versions stay): the record
                   goes, its count drops, an audit entry (feedback_withdrawn)
                   and the event feedback_withdrawn. Without a vote it
                   answers withdrawn: false and writes nothing but the rate
                   bucket.
    feedback_get   a message's counts and its ten most recent votes.      */
#ifndef ST_H_FEEDBACK_H_INCLUDED
#define ST_H_FEEDBACK_H_INCLUDED

#include "st_ctx.h"

int st_h_feedback_put (st_ctx_t *c);
int st_h_feedback_delete (st_ctx_t *c);
int st_h_feedback_get (st_ctx_t *c);

#endif
