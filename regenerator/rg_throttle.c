#include "rg_throttle.h"

void
rg_throttle_init (rg_throttle_t *self, int64_t interval_ms, int64_t lease_ms, int64_t now_ms)
{
    self->interval_ms = interval_ms > 0 ? interval_ms : 0;
    self->renew_ms = lease_ms / 3 > 1 ? lease_ms / 3 : 1;
    self->last_ms = now_ms;
    self->last_progress_ms = now_ms;
    self->progressed = false;
}

bool
rg_throttle_due (const rg_throttle_t *self, int64_t now_ms, bool changed)
{
    if (now_ms - self->last_ms >= self->renew_ms)
        return true;
    if (!changed)
        return false;
    return !self->progressed || now_ms - self->last_progress_ms >= self->interval_ms;
}

void
rg_throttle_sent (rg_throttle_t *self, int64_t now_ms)
{
    self->last_ms = now_ms;
}

void
rg_throttle_progress_sent (rg_throttle_t *self, int64_t now_ms)
{
    self->last_ms = now_ms;
    self->last_progress_ms = now_ms;
    self->progressed = true;
}
