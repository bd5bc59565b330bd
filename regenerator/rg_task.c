#include "rg_task.h"
#include "cm_error.h"

#include <stdlib.h>
#include <string.h>

static char *
s_dup (const cm_value_t *map, const char *key)
{
    return strdup (cm_map_str_or (map, key, ""));
}

int
rg_task_parse (const cm_value_t *map, rg_task_t **out)
{
    const char *task_id = cm_map_str (map, "task_id");
    if (!task_id || !*task_id)
        return CM_EPROTO;
    rg_task_t *self = calloc (1, sizeof *self);
    if (!self)
        return CM_ENOMEM;
    self->task_id = s_dup (map, "task_id");
    self->kind = s_dup (map, "kind");
    self->message_id = s_dup (map, "message_id");
    self->session_id = s_dup (map, "session_id");
    self->original_message_id = s_dup (map, "original_message_id");
    self->user_query = s_dup (map, "user_query");
    self->context = s_dup (map, "context");
    self->instruction = s_dup (map, "instruction");
    self->model = s_dup (map, "model");
    self->partial = s_dup (map, "partial");
    const char *seed = cm_map_str (map, "seed_task_id"), *seed_kind = cm_map_str (map, "seed_kind");
    self->seed_task_id = strdup (seed && *seed ? seed : task_id);
    self->seed_kind = strdup (seed_kind && *seed_kind ? seed_kind : cm_map_str_or (map, "kind", ""));
    self->temperature = cm_map_dbl (map, "temperature", RG_TASK_DEFAULT_TEMPERATURE);
    if (self->temperature < 0 || self->temperature > 2)
        self->temperature = RG_TASK_DEFAULT_TEMPERATURE;
    self->attempt = cm_map_int (map, "attempt", 0);
    self->lease_ms = cm_map_int (map, "lease_ms", RG_TASK_DEFAULT_LEASE_MS);
    self->fence = cm_map_int (map, "fence", 0);
    if (self->lease_ms <= 0)
        self->lease_ms = RG_TASK_DEFAULT_LEASE_MS;
    bool ok = self->task_id && self->kind && self->message_id && self->session_id
              && self->original_message_id && self->user_query && self->context
              && self->instruction
              && self->model && self->partial && self->seed_task_id && self->seed_kind;
    const cm_value_t *conversation = cm_map_get (map, "conversation");
    size_t count = conversation && conversation->type == CM_T_ARR ? cm_value_len (conversation)
                                                                  : 0;
    if (ok && count) {
        self->turns = calloc (count, sizeof *self->turns);
        ok = self->turns != NULL;
        for (size_t i = 0; ok && i < count; i++) {
            const cm_value_t *turn = cm_arr_at (conversation, i);
            if (!turn || turn->type != CM_T_MAP)
                continue; //  skip junk, keep the rest of the conversation
            rg_turn_t *dest = &self->turns[self->turn_count];
            dest->role = s_dup (turn, "role");
            dest->content = s_dup (turn, "content");
            self->turn_count++;
            ok = dest->role && dest->content;
        }
    }
    //  A store that did not fill user_query: take the last user turn.
    if (ok && !*self->user_query) {
        for (size_t i = self->turn_count; i-- > 0;)
            if (strcmp (self->turns[i].role, "user") == 0) {
                free (self->user_query);
                self->user_query = strdup (self->turns[i].content);
                ok = self->user_query != NULL;
                break;
            }
    }
    if (!ok) {
        rg_task_destroy (&self);
        return CM_ENOMEM;
    }
    *out = self;
    return 0;
}

void
rg_task_destroy (rg_task_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rg_task_t *self = *self_p;
    free (self->task_id);
    free (self->kind);
    free (self->message_id);
    free (self->session_id);
    free (self->original_message_id);
    free (self->user_query);
    free (self->context);
    free (self->instruction);
    free (self->model);
    free (self->partial);
    free (self->seed_task_id);
    free (self->seed_kind);
    for (size_t i = 0; i < self->turn_count; i++) {
        free (self->turns[i].role);
        free (self->turns[i].content);
    }
    free (self->turns);
    free (self);
    *self_p = NULL;
}
