#include "rg_builtin.h"
#include "cm_error.h"
#include "cm_time.h"

#include <ctype.h>
#include <strings.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_TERMS 64   //  distinct candidate terms kept
#define S_TERM_BYTES 48  //  longer "words" are probably not words
#define S_RESTATE_BYTES 300

//  --------------------------------------------------------------------------
//  Deterministic randomness: splitmix64, seeded per task.

static uint64_t
s_rand (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double
s_uniform (uint64_t *state)
{
    return (double) (s_rand (state) >> 11) / 9007199254740992.0; //  [0, 1)
}

static size_t
s_pick (uint64_t *state, size_t count)
{
    return (size_t) (s_rand (state) % count);
}

uint64_t
rg_builtin_seed (const rg_task_t *task)
{
    uint64_t hash = 0xcbf29ce484222325ULL; //  FNV-1a
    for (const char *p = task->seed_task_id; *p; p++)
        hash = (hash ^ (uint8_t) *p) * 0x100000001b3ULL;
    //  Temperature in hundredths, so 0.7 and 0.70000001 are the same seed.
    long hundredths = (long) (task->temperature * 100 + 0.5);
    return hash ^ ((uint64_t) hundredths * 0x9e3779b97f4a7c15ULL);
}

//  --------------------------------------------------------------------------
//  A growing string.

typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} s_buf_t;

static void
s_append (s_buf_t *buf, const char *text, size_t len)
{
    if (buf->failed)
        return;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < buf->len + len + 1)
            cap *= 2;
        char *data = realloc (buf->data, cap);
        if (!data) {
            buf->failed = true;
            return;
        }
        buf->data = data;
        buf->cap = cap;
    }
    memcpy (buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

static void __attribute__ ((format (printf, 2, 3)))
s_printf (s_buf_t *buf, const char *format, ...)
{
    char stack[1024];
    va_list args;
    va_start (args, format);
    int len = vsnprintf (stack, sizeof stack, format, args);
    va_end (args);
    if (len < 0) {
        buf->failed = true;
        return;
    }
    if ((size_t) len < sizeof stack) {
        s_append (buf, stack, (size_t) len);
        return;
    }
    char *heap = malloc ((size_t) len + 1);
    if (!heap) {
        buf->failed = true;
        return;
    }
    va_start (args, format);
    vsnprintf (heap, (size_t) len + 1, format, args);
    va_end (args);
    s_append (buf, heap, (size_t) len);
    free (heap);
}

static char *
s_take (s_buf_t *buf)
{
    if (buf->failed || !buf->data) {
        free (buf->data);
        return NULL;
    }
    return buf->data;
}

//  --------------------------------------------------------------------------
//  Key terms: the words that matter most in the question, then in the rest
//  of the conversation.

typedef struct {
    char key[S_TERM_BYTES + 1];  //  lowercased
    char shown[S_TERM_BYTES + 1]; //  as first written
    double score;
    size_t first;                //  order of first appearance
    bool in_query;
} s_term_t;

typedef struct {
    s_term_t terms[S_MAX_TERMS];
    size_t count;
    size_t seen; //  words read, for `first`
    size_t query_words;
} s_terms_t;

static const char *s_stopwords[] = {
    "the", "and", "for", "are", "but", "not", "you", "your", "all", "any", "can", "had",
    "her", "was", "one", "our", "out", "his", "has", "how", "its", "may", "new", "now",
    "old", "see", "two", "who", "did", "get", "let", "say", "she", "too", "use", "why",
    "what", "when", "where", "which", "with", "this", "that", "these", "those", "there",
    "their", "them", "then", "than", "from", "have", "into", "just", "like", "more",
    "most", "much", "some", "such", "very", "will", "would", "could", "should", "about",
    "after", "again", "also", "been", "before", "being", "between", "both", "does",
    "doing", "each", "only", "other", "over", "same", "they", "were", "while", "here",
    "want", "need", "know", "tell", "please", "explain", "thanks", "thank", "hello",
    "make", "made", "give", "using", "used", "well", "good", "best", "better", "really",
    "thing", "things", "something", "anything", "way", "ways", "able", "many", "lot",
    "question", "answer", "yes", "okay", "hi", "hey", "are", "is", "it", "be", "to", "of",
    "getting", "keep", "keeps", "keeping", "going", "doing", "having", "making", "take",
    "takes", "look", "looks", "seem", "seems", "work", "works", "try", "trying", "done",
    "into", "onto", "upon", "within", "without", "through", "because", "though", "even",
    "in", "on", "at", "by", "or", "an", "as", "if", "so", "do", "we", "me", "my", "no"};

static bool
s_is_stopword (const char *key)
{
    for (size_t i = 0; i < sizeof s_stopwords / sizeof s_stopwords[0]; i++)
        if (strcmp (key, s_stopwords[i]) == 0)
            return true;
    return false;
}

static bool
s_word_byte (unsigned char c)
{
    return isalnum (c) || c >= 0x80 || c == '_';
}

static void
s_add_term (s_terms_t *terms, const char *word, size_t len, double weight, bool in_query)
{
    terms->seen++;
    if (len < 3 || len > S_TERM_BYTES)
        return;
    char key[S_TERM_BYTES + 1];
    bool digits_only = true;
    for (size_t i = 0; i < len; i++) {
        key[i] = (char) tolower ((unsigned char) word[i]);
        if (!isdigit ((unsigned char) word[i]))
            digits_only = false;
    }
    key[len] = '\0';
    if (digits_only || s_is_stopword (key))
        return;
    for (size_t i = 0; i < terms->count; i++)
        if (strcmp (terms->terms[i].key, key) == 0) {
            terms->terms[i].score += weight;
            terms->terms[i].in_query |= in_query;
            return;
        }
    if (terms->count == S_MAX_TERMS)
        return;
    s_term_t *term = &terms->terms[terms->count++];
    memcpy (term->key, key, len + 1);
    memcpy (term->shown, word, len);
    term->shown[len] = '\0';
    //  Longer words carry more meaning than short ones, a little.
    term->score = weight * (1.0 + (len > 6 ? 0.25 : 0));
    term->first = terms->seen;
    term->in_query = in_query;
}

static size_t
s_scan (s_terms_t *terms, const char *text, double weight, bool in_query)
{
    size_t words = 0;
    const char *p = text;
    while (*p) {
        while (*p && !s_word_byte ((unsigned char) *p))
            p++;
        const char *start = p;
        //  Keep inner hyphens: "real-time", "zero-copy".
        while (*p && (s_word_byte ((unsigned char) *p)
                      || (*p == '-' && p > start && s_word_byte ((unsigned char) p[1]))))
            p++;
        if (p > start) {
            s_add_term (terms, start, (size_t) (p - start), weight, in_query);
            words++;
        }
    }
    return words;
}

//  Best terms first; temperature adds noise, so near-ties reorder when it
//  is high and never when it is 0.
static size_t
s_rank (s_terms_t *terms, uint64_t *rng, double temperature, s_term_t **out, size_t max)
{
    double noisy[S_MAX_TERMS];
    for (size_t i = 0; i < terms->count; i++)
        noisy[i] = terms->terms[i].score + temperature * 1.5 * s_uniform (rng);
    size_t n = 0;
    bool used[S_MAX_TERMS] = {false};
    while (n < max) {
        size_t best = S_MAX_TERMS;
        for (size_t i = 0; i < terms->count; i++) {
            if (used[i])
                continue;
            if (best == S_MAX_TERMS || noisy[i] > noisy[best]
                || (noisy[i] == noisy[best] && terms->terms[i].first < terms->terms[best].first))
                best = i;
        }
        if (best == S_MAX_TERMS)
            break;
        used[best] = true;
        out[n++] = &terms->terms[best];
    }
    return n;
}

//  The question on one line, at most S_RESTATE_BYTES, cut at a character
//  boundary.
static void
s_restate (s_buf_t *buf, const char *query)
{
    char line[S_RESTATE_BYTES + 4];
    size_t len = 0;
    bool space = false;
    const char *p = query;
    while (*p && isspace ((unsigned char) *p))
        p++;
    for (; *p && len < S_RESTATE_BYTES; p++) {
        if (isspace ((unsigned char) *p)) {
            space = true;
            continue;
        }
        if (space && len)
            line[len++] = ' ';
        space = false;
        if (len < S_RESTATE_BYTES)
            line[len++] = *p;
    }
    bool cut = *p != '\0';
    if (cut)
        while (len && ((unsigned char) line[len - 1] & 0xC0) == 0x80)
            len--; //  continuation bytes of a cut character
    if (cut && len && (unsigned char) line[len - 1] >= 0xC0)
        len--;     //  its lead byte
    line[len] = '\0';
    s_printf (buf, "%s%s", line, cut ? "…" : "");
}

static const char *s_intro[] = {
    "Here is a structured answer, built from your question and the conversation so far.",
    "Let's work through this step by step, using what has been discussed.",
    "Below is a short, organised answer that draws on the whole conversation.",
};
static const char *s_intro_again[] = {
    "Here is another take on the question, approached from a slightly different angle.",
    "Here is a fresh answer to the same question.",
};
static const char *s_intro_edit[] = {
    "Here is an answer to the question as you edited it.",
    "Taking your edited question into account, here is an updated answer.",
};
static const char *s_point_query[] = {
    ("**%s** is at the heart of what you are asking: start by pinning down what it means "
     "in your situation."),
    "The question turns on **%s**; most of the answer depends on how it is understood.",
    "Look at **%s** concretely: which numbers, limits or examples apply in your case?",
    "**%s** deserves a check against real usage before any change is made.",
    "Consider the trade-offs around **%s**: what it costs, and what it buys you.",
};
static const char *s_point_context[] = {
    ("**%s** came up earlier in the conversation, and it shapes the assumptions behind "
     "this question."),
    "Earlier messages mention **%s**; it is worth carrying that thread into this answer.",
    ("Do not lose **%s** from the earlier discussion: it constrains which options make "
     "sense."),
};
static const char *s_link[] = {
    " It connects directly to **%s**, so the two are best considered together.",
    " Keep **%s** in view as well: each affects how the other plays out.",
    " It also bears on **%s**.",
    " Check how it interacts with **%s**.",
};

//  Picks one of count templates, avoiding those already used in this answer
//  while any is left (used is a bit mask), so points do not read alike.
static size_t
s_pick_fresh (uint64_t *rng, size_t count, unsigned *used)
{
    size_t index = s_pick (rng, count);
    for (size_t tries = 0; tries < count && (*used & (1u << index)); tries++)
        index = (index + 1) % count;
    *used |= 1u << index;
    return index;
}
static const char *s_conclude[] = {
    ("In short, the question about **%s** comes down to %s. Settle that first, and the "
     "remaining details follow from it."),
    "To sum up: focus on **%s**, and weigh it against %s before deciding.",
    "Overall, **%s** is the key, and %s determine how it applies in practice.",
};

static void
s_term_list (s_buf_t *buf, s_term_t **terms, size_t count, bool bold)
{
    for (size_t i = 0; i < count; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == count ? " and " : ", ");
        s_printf (buf, bold ? "%s**%s**" : "%s%s", sep, terms[i]->shown);
    }
}

//  True when text holds word, ignoring case.
static bool
s_mentions (const char *text, const char *word)
{
    size_t len = strlen (word);
    for (const char *p = text; *p; p++)
        if (strncasecmp (p, word, len) == 0)
            return true;
    return false;
}

//  The points an instruction asks for: fewer for "shorter" (brief,
//  concise), all there are room for with "more detail" (longer), else
//  want.
static size_t
s_instructed_points (const char *instruction, size_t want)
{
    if (s_mentions (instruction, "short") || s_mentions (instruction, "brief")
        || s_mentions (instruction, "concise"))
        return 2;
    if (s_mentions (instruction, "detail") || s_mentions (instruction, "longer"))
        return RG_BUILTIN_MAX_POINTS;
    return want;
}

int
rg_builtin_compose (const rg_task_t *task, uint64_t seed, double temperature,
                    rg_builtin_text_t *text)
{
    memset (text, 0, sizeof *text);
    uint64_t rng = seed;
    s_terms_t *terms = calloc (1, sizeof *terms);
    if (!terms)
        return CM_ENOMEM;
    terms->query_words = s_scan (terms, task->user_query, 3.0, true);
    size_t earlier = 0;
    for (size_t i = 0; i < task->turn_count; i++) {
        const rg_turn_t *turn = &task->turns[i];
        //  The prompting user message is the query itself; skip its copy.
        if (i + 1 == task->turn_count && strcmp (turn->role, "user") == 0
            && strcmp (turn->content, task->user_query) == 0)
            break;
        s_scan (terms, turn->content, strcmp (turn->role, "user") == 0 ? 1.5 : 1.0, false);
        earlier++;
    }
    if (task->context[0])
        s_scan (terms, task->context, 2.0, false);

    size_t want = 3 + (temperature > 0.3 ? s_pick (&rng, 3) : 1);
    want = s_instructed_points (task->instruction, want);
    s_term_t *top[RG_BUILTIN_MAX_POINTS];
    size_t count = s_rank (terms, &rng, temperature, top, want);

    s_buf_t answer = {0};
    s_append (&answer, "**Your question:** ", 19);
    s_restate (&answer, task->user_query);
    s_append (&answer, "\n\n", 2);
    if (strcmp (task->seed_kind, "edit") == 0)
        s_printf (&answer, "%s", s_intro_edit[s_pick (&rng, 2)]);
    else if (strcmp (task->seed_kind, "regenerate") == 0)
        s_printf (&answer, "%s", s_intro_again[s_pick (&rng, 2)]);
    else
        s_printf (&answer, "%s", s_intro[s_pick (&rng, 3)]);
    if (task->context[0]) {
        s_append (&answer, " You asked for: _", 17);
        s_restate (&answer, task->context);
        s_printf (&answer, "_ — the points below take that into account.");
    }
    if (task->instruction[0]) {
        s_printf (&answer, " As you asked — _");
        s_restate (&answer, task->instruction);
        s_printf (&answer, "_ — this answer has %zu point%s.", count ? count : 3,
                  count == 1 ? "" : "s");
    }
    s_append (&answer, "\n\n### Key points\n\n", 18);
    if (count == 0) {
        s_printf (&answer, "1. The question is short, so the most useful first step is to "
                           "say precisely what you want to achieve.\n"
                           "2. Add the context that matters: what you have tried, and what "
                           "a good outcome looks like.\n"
                           "3. With that, a concrete, step-by-step answer becomes "
                           "possible.\n");
    }
    unsigned used_query = 0, used_context = 0, used_link = 0;
    for (size_t i = 0; i < count; i++) {
        const char *format = top[i]->in_query
                                 ? s_point_query[s_pick_fresh (&rng, 5, &used_query)]
                                 : s_point_context[s_pick_fresh (&rng, 3, &used_context)];
        s_printf (&answer, "%zu. ", i + 1);
        s_printf (&answer, format, top[i]->shown);
        //  Link about every other point to another term, not all of them.
        if (count > 1 && s_pick (&rng, 2) == 0) {
            size_t other = (i + 1 + s_pick (&rng, count - 1)) % count;
            s_printf (&answer, s_link[s_pick_fresh (&rng, 4, &used_link)], top[other]->shown);
        }
        s_append (&answer, "\n", 1);
    }
    s_append (&answer, "\n### Conclusion\n\n", 17);
    if (count == 0)
        s_printf (&answer, "Share a little more detail and the answer can be specific.");
    else {
        s_buf_t rest = {0};
        if (count > 1)
            s_term_list (&rest, top + 1, count - 1, false);
        else
            s_printf (&rest, "how it applies to your case");
        char *rest_text = s_take (&rest);
        s_printf (&answer, s_conclude[s_pick (&rng, 3)], top[0]->shown,
                  rest_text ? rest_text : "");
        free (rest_text);
    }
    s_append (&answer, "\n", 1);
    text->answer = s_take (&answer);

    s_buf_t about = {0};
    if (count) {
        s_printf (&about, "How to answer a question about ");
        s_term_list (&about, top, count < 3 ? count : 3, false);
    }
    else
        s_printf (&about, "How to answer a short, open question");
    text->thinking_about = s_take (&about);

    s_buf_t step = {0};
    s_printf (&step, "Reading the question (%zu words) and the %zu earlier message%s.",
              terms->query_words, earlier, earlier == 1 ? "" : "s");
    text->steps[text->step_count++] = s_take (&step);
    memset (&step, 0, sizeof step);
    if (count) {
        s_printf (&step, "Picking out the key terms: ");
        s_term_list (&step, top, count, false);
        s_printf (&step, ".");
    }
    else
        s_printf (&step, "No specific terms stand out, so the answer should ask for detail.");
    text->steps[text->step_count++] = s_take (&step);
    memset (&step, 0, sizeof step);
    if (count > 1)
        s_printf (&step, "Relating %s to %s and ordering the points.", top[0]->shown,
                  top[1]->shown);
    else
        s_printf (&step, "Deciding what a useful answer needs to cover.");
    text->steps[text->step_count++] = s_take (&step);
    memset (&step, 0, sizeof step);
    s_printf (&step, "Drafting %zu points and a short conclusion.", count ? count : 3);
    text->steps[text->step_count++] = s_take (&step);

    s_buf_t conclusion = {0};
    s_printf (&conclusion, "Answer with %zu points%s%s, then conclude.", count ? count : 3,
              count ? ", led by " : "", count ? top[0]->shown : "");
    text->conclusion = s_take (&conclusion);
    free (terms);

    bool ok = text->answer && text->thinking_about && text->conclusion;
    for (int i = 0; i < text->step_count; i++)
        ok = ok && text->steps[i];
    if (!ok) {
        rg_builtin_text_free (text);
        return CM_ENOMEM;
    }
    return 0;
}

void
rg_builtin_text_free (rg_builtin_text_t *text)
{
    free (text->answer);
    free (text->thinking_about);
    for (int i = 0; i < text->step_count; i++)
        free (text->steps[i]);
    free (text->conclusion);
    memset (text, 0, sizeof *text);
}

size_t
rg_builtin_token_len (const char *text, size_t pos)
{
    const char *start = text + pos;
    const char *p = start;
    if (!*p)
        return 0;
    if (*p == '\n') { //  a paragraph break is its own token
        while (*p == '\n')
            p++;
        return (size_t) (p - start);
    }
    while (*p && !isspace ((unsigned char) *p))
        p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return (size_t) (p - start);
}

//  --------------------------------------------------------------------------
//  The backend.

typedef struct {
    int tokens_per_sec;
} s_state_t;

//  A stream walks through units: THINK_START, the steps, THINK_DONE (only
//  when thoughts are wanted), then the tokens of the answer. Every unit is
//  due at start + index / rate.
typedef struct {
    rg_builtin_text_t text;
    bool thoughts;
    int tokens_per_sec;
    int64_t start_us;
    size_t unit;       //  units emitted
    int think_index;   //  0 start, 1..steps, steps + 1 done, then tokens
    size_t pos;        //  in the answer
    size_t tokens_total;
    size_t tokens_sent;
    char token[512];
} s_stream_t;

static int
s_open (void *state_arg, const rg_task_t *task, const rg_open_options_t *options,
        void **stream_p, char *why, size_t why_size)
{
    s_state_t *state = state_arg;
    s_stream_t *stream = calloc (1, sizeof *stream);
    if (!stream || rg_builtin_compose (task, rg_builtin_seed (task), task->temperature,
                                       &stream->text)) {
        free (stream);
        snprintf (why, why_size, "out of memory");
        return CM_ENOMEM;
    }
    stream->thoughts = options && options->thoughts;
    stream->think_index = stream->thoughts ? 0 : stream->text.step_count + 2;
    stream->tokens_per_sec = state->tokens_per_sec;
    stream->start_us = cm_mono_us ();
    //  A takeover: the same task composes the same answer, so the text an
    //  earlier lease checkpointed is its prefix; go on from its end.
    size_t resume = strlen (task->partial);
    if (resume > strlen (stream->text.answer)
        || strncmp (stream->text.answer, task->partial, resume) != 0)
        resume = 0;
    for (size_t pos = 0, len; (len = rg_builtin_token_len (stream->text.answer, pos));
         pos += len) {
        stream->tokens_total++;
        if (pos < resume)
            stream->tokens_sent++;
    }
    stream->pos = resume;
    *stream_p = stream;
    return 0;
}

static void
s_sleep_us (int64_t us)
{
    struct timespec ts = {(time_t) (us / 1000000), (long) (us % 1000000) * 1000};
    nanosleep (&ts, NULL);
}

static int
s_next (void *stream_arg, int wait_ms, const atomic_bool *cancelled, rg_chunk_t *chunk,
        char *why, size_t why_size, bool *retryable)
{
    (void) why;
    (void) why_size;
    (void) retryable;
    s_stream_t *stream = stream_arg;
    if (stream->tokens_per_sec > 0) {
        int64_t due = stream->start_us
                      + (int64_t) stream->unit * 1000000 / stream->tokens_per_sec;
        int64_t deadline = cm_mono_us () + (int64_t) wait_ms * 1000;
        //  Sleep in short slices so a cancellation is seen within ~10 ms.
        while (true) {
            if (atomic_load (cancelled))
                return CM_ECANCELLED;
            int64_t now = cm_mono_us ();
            if (now >= due)
                break;
            if (now >= deadline)
                return RG_STREAM_AGAIN;
            int64_t nap = due < deadline ? due - now : deadline - now;
            s_sleep_us (nap < 10000 ? nap : 10000);
        }
    }
    else if (atomic_load (cancelled))
        return CM_ECANCELLED;

    memset (chunk, 0, sizeof *chunk);
    chunk->progress = -1;
    chunk->total_steps = stream->text.step_count;
    int steps = stream->text.step_count;
    if (stream->think_index == 0) {
        chunk->kind = RG_CHUNK_THINK_START;
        chunk->text = stream->text.thinking_about;
    }
    else if (stream->think_index <= steps) {
        chunk->kind = RG_CHUNK_THINK_STEP;
        chunk->step = stream->think_index;
        chunk->text = stream->text.steps[stream->think_index - 1];
    }
    else if (stream->think_index == steps + 1) {
        chunk->kind = RG_CHUNK_THINK_DONE;
        chunk->text = stream->text.conclusion;
    }
    if (stream->think_index <= steps + 1) {
        stream->think_index++;
        stream->unit++;
        chunk->len = strlen (chunk->text);
        return 0;
    }
    size_t len = rg_builtin_token_len (stream->text.answer, stream->pos);
    if (len == 0)
        return RG_STREAM_END;
    //  Tokens are words, but a pathological "word" is sent in pieces.
    if (len >= sizeof stream->token) {
        len = sizeof stream->token - 1;
        //  Never end a piece inside a UTF-8 character: partial text must
        //  stay valid UTF-8 for the JSON the browser gets.
        while (len > 1 && ((unsigned char) stream->text.answer[stream->pos + len] & 0xC0) == 0x80)
            len--;
    }
    memcpy (stream->token, stream->text.answer + stream->pos, len);
    stream->token[len] = '\0';
    stream->pos += len;
    stream->unit++;
    stream->tokens_sent++;
    chunk->kind = RG_CHUNK_TOKEN;
    chunk->text = stream->token;
    chunk->len = len;
    chunk->progress = (int) (stream->tokens_sent * 99 / (stream->tokens_total ? stream->tokens_total : 1));
    return 0;
}

static const char *
s_model (void *stream)
{
    (void) stream;
    return RG_BUILTIN_MODEL;
}

static void
s_close (void **stream_p)
{
    s_stream_t *stream = *stream_p;
    if (!stream)
        return;
    rg_builtin_text_free (&stream->text);
    free (stream);
    *stream_p = NULL;
}

static void
s_destroy (void **state_p)
{
    free (*state_p);
    *state_p = NULL;
}

static const rg_backend_ops_t s_ops = {"builtin", s_open,    s_next, s_model,
                                       s_close,   s_destroy, NULL,   NULL};

rg_backend_t *
rg_builtin_new (int tokens_per_sec)
{
    s_state_t *state = calloc (1, sizeof *state);
    if (!state)
        return NULL;
    state->tokens_per_sec = tokens_per_sec < 0 ? 0 : tokens_per_sec;
    void *state_p = state;
    return rg_backend_new (&s_ops, &state_p);
}
