#include "rg_think.h"

#include <string.h>

static const char s_open_tag[] = "<think>";
static const char s_close_tag[] = "</think>";

void
rg_think_init (rg_think_t *self)
{
    memset (self, 0, sizeof *self);
}

static void
s_emit (rg_think_t *self, const char *text, size_t len, rg_think_fn *fn, void *arg)
{
    if (len)
        fn (arg, self->inside, text, len);
}

static bool
s_is (const rg_think_t *self, const char *tag, size_t tag_len, bool whole)
{
    return (whole ? self->held_len == tag_len : self->held_len <= tag_len)
           && memcmp (self->held, tag, self->held_len) == 0;
}

void
rg_think_feed (rg_think_t *self, const char *text, size_t len, rg_think_fn *fn, void *arg)
{
    size_t run = 0; //  start of the plain text not yet handed on
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (self->held_len == 0 && c != '<') {
            if (self->skip_space && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
                s_emit (self, text + run, i - run, fn, arg);
                run = i + 1;
            }
            else
                self->skip_space = false;
            continue;
        }
        if (self->held_len == 0)
            s_emit (self, text + run, i - run, fn, arg);
        run = i + 1;
        self->held[self->held_len++] = c;
        bool open = !self->inside && s_is (self, s_open_tag, sizeof s_open_tag - 1, true);
        if (open || s_is (self, s_close_tag, sizeof s_close_tag - 1, true)) {
            self->inside = open;
            self->held_len = 0;
            self->skip_space = true;
            continue;
        }
        if ((!self->inside && s_is (self, s_open_tag, sizeof s_open_tag - 1, false))
            || s_is (self, s_close_tag, sizeof s_close_tag - 1, false))
            continue;
        //  Not a tag after all: text, but a '<' that broke it may start one.
        bool restart = c == '<' && self->held_len > 1;
        s_emit (self, self->held, self->held_len - restart, fn, arg);
        self->skip_space = false;
        self->held_len = restart;
        self->held[0] = '<';
    }
    s_emit (self, text + run, len - run, fn, arg);
}

void
rg_think_flush (rg_think_t *self, rg_think_fn *fn, void *arg)
{
    s_emit (self, self->held, self->held_len, fn, arg);
    self->held_len = 0;
}
