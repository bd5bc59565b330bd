/*  rg_think.h: splits streamed answer text into reasoning and answer at
    `<think>` ... `</think>`, as many servers and models (DeepSeek-R1,
    Qwen3, QwQ behind llama.cpp or Ollama) put the reasoning in
    delta.content rather than in a reasoning field.

    Text arrives in pieces cut anywhere, a tag included ("<thi" + "nk>"),
    so the splitter holds back the bytes that may still become a tag (at
    most 7) and hands them on once they cannot: the output is the same
    however the input is cut. Tags themselves are never output. Inside a
    block only `</think>` ends it (a `<think>` there is reasoning text);
    outside one, a stray `</think>` is dropped too (a template that opens
    the block in the prompt sends only the close). White space right after
    either tag is dropped, as models follow each tag with a newline or two.
    Plain struct, no allocation; one per stream.                         */
#ifndef RG_THINK_H_INCLUDED
#define RG_THINK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Receives each piece in order: reasoning (inside a block) or answer text.
//  text is not NUL-terminated and is valid only during the call.
typedef void (rg_think_fn) (void *arg, bool reasoning, const char *text, size_t len);

typedef struct {
    bool inside;      //  in a <think> block
    bool skip_space;  //  right after a tag
    char held[8];     //  a possible tag, not yet complete
    size_t held_len;
} rg_think_t;

void rg_think_init (rg_think_t *self);

//  Splits the next piece of content, calling fn for what is certain.
void rg_think_feed (rg_think_t *self, const char *text, size_t len, rg_think_fn *fn, void *arg);

//  The stream ended: hands on held bytes (an incomplete tag is text).
void rg_think_flush (rg_think_t *self, rg_think_fn *fn, void *arg);

#endif
