/*  gw_hub.h: the gateway's live events, from the broadcaster's SUB socket to
    every local stream of their session.

    Threads:
    - one dispatcher thread owns the SUB socket: it subscribes to a session
      only while the gateway has a local stream for it (attach/detach post
      subscription changes to it through an eventfd) and hands each event,
      decoded and formatted once (gw_event.h), to every writer thread;
    - writer threads (options.writers), each owning a shard of the streams
      (round robin on attach): a writer fans each event out to its shard's
      streams of that session (gw_stream_offer: a non-blocking send() on the
      fast path, else the stream's queue) and sends keepalives and checks
      for dead clients (gw_stream_tend), so a live stream needs no timer;
    - slow-path threads (2 x writers) serve detached streams that left the
      fast path (gw_stream_resume: blocking writes, history fills, the
      stream's end), one thread per stream at a time.

    Ownership: the hub never owns an attached stream that its connection
    thread still runs; it owns a detached one (gw_stream.h) from the detach
    until the stream's end, when it detaches, destroys it and calls its
    params.ended. Writers touch a stream only while it is attached (under
    their shard's lock), so after gw_hub_detach returns no writer touches
    it. Lock order: the hub's lock, a shard's lock, a stream's lock, the
    slow-path queue's lock.                                                 */
#ifndef GW_HUB_H_INCLUDED
#define GW_HUB_H_INCLUDED

#include "cm_curve.h"
#include "gw_event.h"
#include "gw_stream.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int writers;          //  writer threads (< 1: 1)
    int keepalive_ms;     //  comment after this much silence (< 1: 15000)
    //  TEST ONLY: drop every Nth live event the dispatcher receives (0 =
    //  none), so tests can check that streams fill gaps from history.
    int test_drop_every;
    //  Counts one event written by a writer thread (metrics); may be NULL.
    void (*delivered) (void *arg);
    void *arg;
} gw_hub_options_t;

//  Starts the dispatcher thread with a SUB socket connected to every
//  broadcaster of the comma list events_endpoint (curve borrowed, NULL =
//  CURVE off; copies of one event id are dropped, gw_dedup.h), the writer and the slow-path
//  threads. options may be NULL (defaults). NULL when the endpoint is
//  invalid or a thread cannot start.
gw_hub_t *gw_hub_new (const char *events_endpoint, cm_curve_t *curve,
                      const gw_hub_options_t *options);
//  Ends the detached streams (closing them), then stops every thread;
//  streams still run by their connection threads must be detached before.
//  Sets *self_p to NULL.
void gw_hub_destroy (gw_hub_t **self_p);
//  Adds a stream to session_id; subscribes when it is the session's first
//  local stream and returns after the broadcaster confirmed the
//  subscription (or 2 s passed: a broadcaster that is down). 0,
//  CM_ECANCELLED when the hub is shutting down, or CM_ENOMEM.
int gw_hub_attach (gw_hub_t *self, const char *session_id, gw_stream_t *stream);
//  Removes the stream (unsubscribing after the session's last one). No
//  writer touches the stream once this returns.
void gw_hub_detach (gw_hub_t *self, const char *session_id, gw_stream_t *stream);
//  Closes every attached stream (shutdown); later attaches fail.
void gw_hub_close_all (gw_hub_t *self);
//  Attached streams right now.
size_t gw_hub_stream_count (gw_hub_t *self);
//  The fan-out step of the writers, run in the caller's thread (tests):
//  writes or queues event for every stream of session_id. Returns the
//  number of streams that took it (written, queued or skipped as a
//  duplicate); not those closed, gone or overflowed.
size_t gw_hub_deliver (gw_hub_t *self, const char *session_id, gw_event_t *event);

//  ---------------------------------------------------------------------
//  The streams' side (gw_stream.c only; any thread)

//  Queues a detached stream that left the fast path for a slow-path
//  thread. Called with the stream's lock held, as the stream leaves FAST
//  (gw_stream_fsm.h: only then, so at most once until a slow-path thread
//  took it).
void gw_hub_slow_enqueue (gw_hub_t *self, gw_stream_t *stream);
//  Counts a stream its connection thread just handed to the hub for good
//  (gw_hub_destroy waits until each has ended).
void gw_hub_adopt (gw_hub_t *self);
//  True once gw_hub_close_all ran (no lock taken).
bool gw_hub_closing (gw_hub_t *self);

#endif
