/*  rg_builtin.h: the builtin generator, offline and deterministic.

    It writes a readable markdown answer from the conversation itself: it
    restates the question, makes a few points from the key terms of the
    question and the earlier messages, and concludes. The same seed and
    temperature always give the same text; the seed is derived from the
    task id (so a retried task writes the same answer) and the temperature;
    a continue task composes its origin's answer (seed_task_id, seed_kind)
    and streams what follows the text it grows, like a takeover.
    It streams the answer word by word at a configured rate. A task with
    checkpointed text (task->partial, a takeover) streams only what follows
    it: the whole text is then byte for byte the uninterrupted answer. A
    partial that is not a prefix of the answer (another backend wrote it)
    gets the whole answer after it. A regenerate's instruction shows: the
    answer restates it and has 2 points for "shorter" ("brief",
    "concise"), RG_BUILTIN_MAX_POINTS (as many as there are terms) for
    "more detail" ("longer"), else its usual 3-5.                        */
#ifndef RG_BUILTIN_H_INCLUDED
#define RG_BUILTIN_H_INCLUDED

#include "rg_backend.h"

#include <stdint.h>

#define RG_BUILTIN_MODEL "builtin"
#define RG_BUILTIN_MAX_STEPS 6
#define RG_BUILTIN_MAX_POINTS 6 //  key points of one answer

//  What the builtin generator writes for one task. Strings are owned.
typedef struct {
    char *answer;
    char *thinking_about;
    char *steps[RG_BUILTIN_MAX_STEPS];
    int step_count;
    char *conclusion;
} rg_builtin_text_t;

//  The seed of a task: a hash of its seed_task_id and temperature.
uint64_t rg_builtin_seed (const rg_task_t *task);

//  Composes the whole text. 0 or CM_ENOMEM. Free with rg_builtin_text_free.
int rg_builtin_compose (const rg_task_t *task, uint64_t seed, double temperature,
                        rg_builtin_text_t *text);
void rg_builtin_text_free (rg_builtin_text_t *text);

//  Length of the token starting at text[pos]: a word and the spaces that
//  follow it (a run of spaces or one newline run alone at the start).
//  0 at the end of the text.
size_t rg_builtin_token_len (const char *text, size_t pos);

//  The builtin backend. tokens_per_sec 0 streams without pacing. NULL on
//  out-of-memory.
rg_backend_t *rg_builtin_new (int tokens_per_sec);

#endif
