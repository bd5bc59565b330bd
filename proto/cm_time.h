/*  cm_time.h: wall-clock milliseconds and the API's timestamp format.  */
#ifndef CM_TIME_H_INCLUDED
#define CM_TIME_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CM_ISO_TIME_LEN 24 //  "2026-11-25T10:00:00.123Z"

//  Milliseconds since the Unix epoch (CLOCK_REALTIME).
int64_t cm_now_ms (void);
//  Milliseconds of CLOCK_MONOTONIC, for timeouts and latency.
int64_t cm_mono_ms (void);
//  Microseconds of CLOCK_MONOTONIC.
int64_t cm_mono_us (void);
//  The CLOCK_MONOTONIC time timeout_ms (>= 0) from now into *deadline, for
//  pthread_cond_timedwait on a condition variable set to that clock (so a
//  wall-clock jump can neither stall nor cut short a wait).
void cm_mono_deadline (struct timespec *deadline, int timeout_ms);
//  ISO-8601 UTC with milliseconds into buffer (>= CM_ISO_TIME_LEN + 1).
void cm_iso_time (int64_t ms, char *buffer, size_t size);

#endif
