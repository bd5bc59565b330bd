/*  rg_task.h: a claimed task, parsed from the store's `task_claim` reply.

    Owns copies of every string, so it outlives the reply envelope and can
    be handed to a worker thread.                                          */
#ifndef RG_TASK_H_INCLUDED
#define RG_TASK_H_INCLUDED

#include "cm_value.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *role;    //  "user", "assistant" or "system"
    char *content;
} rg_turn_t;

typedef struct {
    char *task_id;
    char *kind;                //  "answer", "regenerate", "edit" or "continue"
    char *message_id;          //  the assistant message being written
    char *session_id;
    char *original_message_id; //  "" when none
    char *user_query;
    char *context;             //  "" when none
    char *instruction;         //  a regenerate's "shorter", "more detail", ...; "" when none
    char *model;               //  "" when the task names none
    double temperature;        //  RG_TASK_DEFAULT_TEMPERATURE when none
    int64_t attempt;
    int64_t lease_ms;
    int64_t fence;             //  the lease's fencing token, sent with every write
    char *partial;             //  the text checkpointed by an earlier lease, or the
                               //  answer a continue task grows, "" when none: the answer
                               //  continues it (takeover continues, not restarts)
    char *seed_task_id;        //  the generation whose answer this writes: a continue's
    char *seed_kind;           //  origin, else task_id and kind themselves
    rg_turn_t *turns;          //  the conversation, oldest first
    size_t turn_count;
} rg_task_t;

#define RG_TASK_DEFAULT_TEMPERATURE 0.7
#define RG_TASK_DEFAULT_LEASE_MS 10000

//  Parses one task map. 0, CM_EPROTO (task_id missing or not a string:
//  nothing can be said to the store about it), CM_ENOMEM.
int rg_task_parse (const cm_value_t *map, rg_task_t **out);
void rg_task_destroy (rg_task_t **self_p);

#endif
