#include "cm_time.h"

#include <stdio.h>
#include <string.h>
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
cm_mono_deadline (struct timespec *deadline, int timeout_ms)
{
    clock_gettime (CLOCK_MONOTONIC, deadline);
    deadline->tv_sec += timeout_ms / 1000;
    deadline->tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_sec++;
        deadline->tv_nsec -= 1000000000L;
    }
}

#define S_YEAR_10000_MS INT64_C (253402300800000) //  first ms that needs 5 digits

//  Writes value as exactly `digits` decimal digits ending before end.
static void
s_digits (char *end, unsigned value, int digits)
{
    while (digits--) {
        *--end = (char) ('0' + value % 10);
        value /= 10;
    }
}

//  The store formats a timestamp per write; gmtime_r + snprintf cost ~3.7k
//  instructions, this ~100. Days to a civil date is H. Hinnant's
//  days_from_civil inverse (proleptic Gregorian, eras of 400 years), which
//  is what gmtime computes for these years.
void
cm_iso_time (int64_t ms, char *buffer, size_t size)
{
    if (ms < 0 || ms >= S_YEAR_10000_MS) {
        //  Outside 1970..9999 nothing of ours formats; keep libc's answer.
        time_t seconds = (time_t) (ms / 1000);
        struct tm tm;
        gmtime_r (&seconds, &tm);
        snprintf (buffer, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  (int) (ms % 1000));
        return;
    }
    if (size == 0)
        return;
    unsigned millis = (unsigned) (ms % 1000);
    int64_t seconds = ms / 1000;
    unsigned second_of_day = (unsigned) (seconds % 86400);
    int64_t z = seconds / 86400 + 719468; //  days since 0000-03-01
    int64_t era = z / 146097;             //  z >= 0 here
    unsigned doe = (unsigned) (z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153; //  month from March = 0
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned month = mp < 10 ? mp + 3 : mp - 9;
    unsigned year = (unsigned) (era * 400) + yoe + (month <= 2);

    char text[CM_ISO_TIME_LEN + 1] = "0000-00-00T00:00:00.000Z";
    s_digits (text + 4, year, 4);
    s_digits (text + 7, month, 2);
    s_digits (text + 10, day, 2);
    s_digits (text + 13, second_of_day / 3600, 2);
    s_digits (text + 16, second_of_day / 60 % 60, 2);
    s_digits (text + 19, second_of_day % 60, 2);
    s_digits (text + 23, millis, 3);
    //  Truncate like snprintf when the caller's buffer is short.
    size_t n = size - 1 < CM_ISO_TIME_LEN ? size - 1 : CM_ISO_TIME_LEN;
    memcpy (buffer, text, n);
    buffer[n] = 0;
}
