/*  test_rg_think: <think> blocks split from the answer. Each case is fed
    whole, then cut at every position and at every pair of positions (so
    every tag is cut everywhere, and one byte may arrive alone); the
    reasoning and the answer must come out the same each time, tags never
    in either.                                                           */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rg_think.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    char reasoning[512];
    char answer[512];
} s_out_t;

static void
s_collect (void *arg, bool reasoning, const char *text, size_t len)
{
    s_out_t *out = arg;
    assert_true (len > 0); //  no empty pieces
    char *to = reasoning ? out->reasoning : out->answer;
    assert_true (strlen (to) + len < sizeof out->answer);
    strncat (to, text, len);
}

//  Feeds input cut at a and b (0 <= a <= b <= len) and flushes.
static void
s_run (const char *input, size_t a, size_t b, s_out_t *out)
{
    memset (out, 0, sizeof *out);
    rg_think_t think;
    rg_think_init (&think);
    size_t len = strlen (input);
    rg_think_feed (&think, input, a, s_collect, out);
    rg_think_feed (&think, input + a, b - a, s_collect, out);
    rg_think_feed (&think, input + b, len - b, s_collect, out);
    rg_think_flush (&think, s_collect, out);
}

static void
s_check (const char *input, const char *reasoning, const char *answer)
{
    size_t len = strlen (input);
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            s_out_t out;
            s_run (input, a, b, &out);
            if (strcmp (out.reasoning, reasoning) || strcmp (out.answer, answer))
                fail_msg ("input '%s' cut at %zu, %zu: reasoning '%s' answer '%s'", input, a,
                          b, out.reasoning, out.answer);
        }
}

//  The usage example: a reasoning block, then the answer.
static void
test_block_then_answer (void **state)
{
    (void) state;
    s_check ("<think>\nThe user greets.\n</think>\n\nHello!", "The user greets.\n", "Hello!");
}

static void
test_no_block (void **state)
{
    (void) state;
    s_check ("Just an answer.", "", "Just an answer.");
    s_check ("", "", "");
    s_check("  leading space kept", "", "  leading space kept");
}

//  Things that look like tags but are not stay text, wherever cut.
static void
test_near_tags_are_text (void **state)
{
    (void) state;
    s_check ("a < b and <thin> <b>x</b>", "", "a < b and <thin> <b>x</b>");
    s_check ("<<think>r</think>", "r", "<");
    s_check ("<thinkk>", "", "<thinkk>");
    s_check ("ends with <thi", "", "ends with <thi");   //  incomplete at the end: text
    s_check ("<think>unfinished </thin", "unfinished </thin", "");
}

static void
test_nested_and_stray (void **state)
{
    (void) state;
    //  Inside a block only the close counts.
    s_check ("<think>a <think> b</think>c", "a <think> b", "c");
    //  A close with no open (the template opened it) is dropped.
    s_check ("reason</think>\nanswer", "", "reasonanswer");
    //  Two blocks: both reasoning.
    s_check ("<think>one</think>mid<think>two</think>end", "onetwo", "midend");
}

static void
test_utf8_kept_whole (void **state)
{
    (void) state;
    s_check ("<think>à é</think>ça va", "à é", "ça va");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_block_then_answer),
        cmocka_unit_test (test_no_block),
        cmocka_unit_test (test_near_tags_are_text),
        cmocka_unit_test (test_nested_and_stray),
        cmocka_unit_test (test_utf8_kept_whole),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
