#include "rg_prompt.h"
#include "cm_error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The next name of a comma-separated list, trimmed: *name and *len, and
//  the rest of the list returned (NULL after the last name).
static const char *
s_next_name (const char *list, const char **name, size_t *len)
{
    const char *comma = strchr (list, ',');
    const char *end = comma ? comma : list + strlen (list);
    while (list < end && *list == ' ')
        list++;
    while (end > list && end[-1] == ' ')
        end--;
    *name = list;
    *len = (size_t) (end - list);
    return comma ? comma + 1 : NULL;
}

static bool
s_allowed (const char *models, const char *model)
{
    const char *name;
    size_t len;
    for (const char *rest = models; rest;) {
        rest = s_next_name (rest, &name, &len);
        if (len == strlen (model) && memcmp (name, model, len) == 0)
            return true;
    }
    return false;
}

int
rg_prompt_check (const rg_prompt_options_t *options, char *why, size_t why_size)
{
    if (!options->models[0])
        return 0;
    const char *name;
    size_t len;
    for (const char *rest = options->models; rest;) {
        rest = s_next_name (rest, &name, &len);
        if (len == 0) {
            snprintf (why, why_size, "CHATMESH_OPENAI_MODELS: an empty name in '%s'",
                      options->models);
            return CM_EINVAL;
        }
    }
    if (options->model[0] && !s_allowed (options->models, options->model)) {
        snprintf (why, why_size, "CHATMESH_OPENAI_MODEL: '%s' is not in CHATMESH_OPENAI_MODELS",
                  options->model);
        return CM_EINVAL;
    }
    return 0;
}

int
rg_prompt_model (const rg_prompt_options_t *options, const char *task_model, char *out,
                 size_t out_size, char *why, size_t why_size)
{
    const char *model = task_model;
    size_t len = strlen (task_model);
    if (!options->models[0]) {
        if (options->model[0]) {
            model = options->model;
            len = strlen (model);
        }
    }
    else if (task_model[0]) {
        if (!s_allowed (options->models, task_model)) {
            snprintf (why, why_size, "openai: model '%s' is not allowed (CHATMESH_OPENAI_MODELS: %s)",
                      task_model, options->models);
            return CM_EINVAL;
        }
    }
    else if (options->model[0]) {
        model = options->model;
        len = strlen (model);
    }
    else
        s_next_name (options->models, &model, &len);
    if (len == 0) {
        snprintf (why, why_size, "openai: no model (set CHATMESH_OPENAI_MODEL)");
        return CM_EINVAL;
    }
    if (len >= out_size) {
        snprintf (why, why_size, "openai: model name longer than %zu bytes", out_size - 1);
        return CM_EINVAL;
    }
    memcpy (out, model, len);
    out[len] = '\0';
    return 0;
}

int64_t
rg_prompt_tokens (const char *content)
{
    return (int64_t) ((strlen (content) + 3) / 4) + RG_PROMPT_MESSAGE_TOKENS;
}

static int
s_append (json_t *messages, const char *role, const char *content)
{
    json_t *message = json_pack ("{s:s, s:s}", "role", role, "content", content);
    return message ? json_array_append_new (messages, message) : -1;
}

//  The system message's text, or NULL for none (caller frees): its parts
//  that are not empty, a blank line between them.
static char *
s_system (const rg_prompt_options_t *options, const rg_task_t *task)
{
    const char *instruction = task->instruction;
    const char *parts[] = {options->system_prompt, task->context,
                           instruction[0] ? RG_PROMPT_INSTRUCTION : "", instruction};
    size_t size = 1;
    for (size_t i = 0; i < 4; i++)
        size += strlen (parts[i]) + 2;
    char *text = malloc (size);
    if (!text)
        return NULL;
    text[0] = '\0';
    for (size_t i = 0; i < 4; i++) {
        if (!parts[i][0])
            continue;
        //  The instruction's lead-in and text are one part.
        if (text[0] && i != 3)
            strcat (text, "\n\n");
        strcat (text, parts[i]);
    }
    if (!text[0]) {
        free (text);
        return NULL;
    }
    return text;
}

char *
rg_prompt_body (const rg_prompt_options_t *options, const rg_task_t *task, const char *model,
                size_t *dropped)
{
    //  The conversation as (role, content); with none, the query alone.
    rg_turn_t query = {"user", task->user_query};
    const rg_turn_t *turns = task->turn_count ? task->turns : &query;
    size_t count = task->turn_count ? task->turn_count : 1;
    char *system = s_system (options, task);
    bool ok = system
              || (!options->system_prompt[0] && !task->context[0] && !task->instruction[0]);

    //  Drop from the oldest while over budget; the question (the last turn)
    //  stays whatever it costs.
    size_t first = 0;
    if (options->context_tokens > 0) {
        int64_t total = system ? rg_prompt_tokens (system) : 0;
        if (task->partial[0])
            total += rg_prompt_tokens (task->partial);
        for (size_t i = 0; i < count; i++)
            total += rg_prompt_tokens (turns[i].content);
        while (first + 1 < count && total > options->context_tokens)
            total -= rg_prompt_tokens (turns[first++].content);
        while (first + 1 < count && strcmp (turns[first].role, "user") != 0)
            first++;
    }
    if (dropped)
        *dropped = first;

    json_t *root = json_object ();
    json_t *messages = json_array ();
    ok = ok && root && messages;
    if (ok && system)
        ok = s_append (messages, "system", system) == 0;
    for (size_t i = first; ok && i < count; i++)
        ok = s_append (messages, turns[i].role, turns[i].content) == 0;
    //  A takeover: the answer so far as a trailing assistant turn, which
    //  the server continues (the worker appends what it sends).
    if (ok && task->partial[0])
        ok = s_append (messages, "assistant", task->partial) == 0;
    //  include_usage: the last chunk then carries the token counts.
    ok = ok && json_object_set_new (root, "model", json_string (model)) == 0
         && json_object_set_new (root, "stream", json_true ()) == 0
         && json_object_set_new (root, "stream_options",
                                 json_pack ("{s:b}", "include_usage", 1)) == 0
         && json_object_set_new (root, "temperature", json_real (task->temperature)) == 0
         && (options->max_tokens <= 0
             || json_object_set_new (root, "max_tokens", json_integer (options->max_tokens)) == 0)
         && json_object_set (root, "messages", messages) == 0;
    char *body = ok ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (messages);
    json_decref (root);
    free (system);
    return body;
}
