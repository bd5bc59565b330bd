/*  rg_prompt.h: what the openai backend asks its server for, as data: the
    model, the messages that fit the context budget, the request body.

    Model (CHATMESH_OPENAI_MODEL, CHATMESH_OPENAI_MODELS):
      - no allow-list: CHATMESH_OPENAI_MODEL when set (it overrides the
        task's), else the task's model;
      - with an allow-list (comma-separated, spaces around names ignored):
        a task that names a model must name one on the list; a task that
        names none gets CHATMESH_OPENAI_MODEL, else the list's first.
    The check is here, not in the gateway, because only a regenerator knows
    its backend (regenerators on different hosts may serve different
    servers). A refused model fails the task at once, not retryably, with
    "openai: model 'X' is not allowed (CHATMESH_OPENAI_MODELS: a, b)" as
    the regeneration_error.

    Messages: one system message (CHATMESH_SYSTEM_PROMPT, then the
    request's context, then a regenerate's instruction after
    RG_PROMPT_INSTRUCTION, separated by blank lines; none when all are
    empty), then the conversation oldest first, then, for a takeover
    (task->partial not empty), the answer so far as a trailing assistant
    turn for the server to continue. The question (the last turn), the
    system message and that partial answer are always sent. With a budget
    (CHATMESH_OPENAI_CONTEXT_TOKENS > 0) the oldest turns are dropped,
    whole, until the estimate fits; a turn left first that is not the
    user's goes too, since chat templates expect a conversation to open
    with the user. The estimate is rg_prompt_tokens: no tokenizer is at
    hand, and bytes/4 is the usual rule of thumb for English BPE text
    (it over-counts code points of other scripts, which errs on the side
    of fitting). The instruction ("shorter", "more detail", free text)
    goes into the system message rather than a turn of its own: chat
    templates expect one system message, first, and turns that alternate
    user/assistant ending with the user's, and a second user turn or a
    trailing system turn breaks some of them (the question must stay the
    last user turn; a takeover's partial answer follows it).             */
#ifndef RG_PROMPT_H_INCLUDED
#define RG_PROMPT_H_INCLUDED

#include "rg_task.h"

#include <stddef.h>
#include <stdint.h>

#define RG_PROMPT_MESSAGE_TOKENS 4 //  per message: role and template markers
//  What introduces a regenerate's instruction in the system message.
#define RG_PROMPT_INSTRUCTION "Instruction for this answer (the user asked to answer again): "

typedef struct {
    const char *model;         //  CHATMESH_OPENAI_MODEL, "" for none
    const char *models;        //  CHATMESH_OPENAI_MODELS, "" for any
    const char *system_prompt; //  CHATMESH_SYSTEM_PROMPT (or its file), "" for none
    int64_t context_tokens;    //  budget of the messages sent, 0 = no budget
    int64_t max_tokens;        //  sent as max_tokens when > 0
} rg_prompt_options_t;

//  Startup check of the settings together: 0, or CM_EINVAL with a reason
//  naming the setting (an empty name in the list, or a default model that
//  the list does not allow).
int rg_prompt_check (const rg_prompt_options_t *options, char *why, size_t why_size);

//  The model for a task whose request named task_model ("" for none).
//  0 with out filled, or CM_EINVAL with why (no model at all, or one the
//  allow-list refuses).
int rg_prompt_model (const rg_prompt_options_t *options, const char *task_model, char *out,
                     size_t out_size, char *why, size_t why_size);

//  Estimated tokens of one message with this content: ceil(bytes / 4) +
//  RG_PROMPT_MESSAGE_TOKENS.
int64_t rg_prompt_tokens (const char *content);

//  The JSON body of POST /v1/chat/completions: model, stream: true,
//  stream_options.include_usage, temperature, max_tokens (when set) and
//  the messages above. Caller frees; NULL on out-of-memory. *dropped (may
//  be NULL) receives how many turns the budget left out.
char *rg_prompt_body (const rg_prompt_options_t *options, const rg_task_t *task,
                      const char *model, size_t *dropped);

#endif
