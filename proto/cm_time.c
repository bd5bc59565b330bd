#include "cm_time.h"

#include <stdio.h>
#include <time.h>

static int64_t
s_clock_us (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cm_now_ms (void) { return s_clock_us (CLOCK_REALTIME) / 1000; }
int64_t cm_mono_ms (void) { return s_clock_us (CLOCK_MONOTONIC) / 1000; }
int64_t cm_mono_us (void) { return s_clock_us (CLOCK_MONOTONIC); }

void
cm_iso_time (int64_t ms, char *buffer, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    snprintf (buffer, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
}
