/*  rg_throttle.h: when a worker sends task_progress.

    Progress goes out at most once per interval (CHATMESH_PROGRESS_INTERVAL_MS,
    ~10 per second), and only when something changed. The first one goes
    out at once, as soon as there is anything to report: the reader wants to
    see that the generation started, not wait an interval. Any store call
    renews the task's lease, so when nothing was sent for a third of the
    lease a progress is due anyway, changed or not. The final 100% is sent
    by the worker regardless of the throttle. A small value type: no
    allocation, no clock of its own (times are passed in).                */
#ifndef RG_THROTTLE_H_INCLUDED
#define RG_THROTTLE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t interval_ms;
    int64_t renew_ms; //  lease_ms / 3
    int64_t last_ms;  //  last store call, of any kind
    int64_t last_progress_ms;
    bool progressed;  //  a progress went out already
} rg_throttle_t;

//  Starts the clocks at now_ms (the claim renewed the lease just now).
void rg_throttle_init (rg_throttle_t *self, int64_t interval_ms, int64_t lease_ms,
                       int64_t now_ms);
//  Whether to send task_progress now; `changed` says whether there is new
//  progress or text since the last one.
bool rg_throttle_due (const rg_throttle_t *self, int64_t now_ms, bool changed);
//  Records a store call made at now_ms (progress, event, anything).
void rg_throttle_sent (rg_throttle_t *self, int64_t now_ms);
//  Records a task_progress sent at now_ms (also a store call).
void rg_throttle_progress_sent (rg_throttle_t *self, int64_t now_ms);

#endif
