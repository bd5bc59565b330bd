/*  gw_sse.h: server-sent event streams.

    Four parts, from pure to threaded:
    - gw_sse_format: one SSE frame "id: ..\nevent: ..\ndata: <json>\n\n".
      The data is compact JSON (jansson escapes every control character), so
      content holding "\r\n" or "\n\nevent: x" cannot break the framing.
    - gw_event: one event, formatted once and shared (refcounted) by every
      stream of its session.
    - gw_cursor: per-stream dedup and gap detection on "<epoch>-<seq>" ids.
    - gw_stream + gw_hub: the hub's one dispatcher thread owns the SUB
      socket and subscribes to a session only while it has a local stream;
      it hands each event to a few writer threads (each owns a shard of the
      streams). A stream is either FAST or not:
      * FAST (the usual state): its connection thread is parked on a
        condition variable and a writer thread writes each event's
        pre-formatted frame straight to the socket with a non-blocking
        send(), keeping the stream's cursor (dedup). Keepalive comments and
        dead-client checks are also done by the writers. No per-event
        wakeup of the connection thread: that is what lets one gateway hold
        10,000 streams (docs/architecture.md, SSE).
      * not FAST: the connection thread owns the socket. A writer hands a
        stream back to its thread when a send would block (the rest of the
        frame and later events go to the bounded per-stream queue, which
        the thread drains with blocking writes), on a gap (history fill)
        or another epoch (resync). The thread rejoins the fast path once
        its queue is empty. A queue that would pass its byte limit marks
        the stream overflowed and shuts its socket down, so a slow reader
        never slows the writers or the other readers.
      Streams without a known socket (fd -1) and streams that end on a
      task's terminal event are never FAST.
      A stream whose params set `ended` is DETACHED when it first goes
      FAST: its connection thread returns (gw_sse_run gives
      GW_SSE_DETACHED) and the hub's slow-path threads do what that thread
      did (partial frames, gap fill, resync, end), so a live stream costs
      no thread at all.
    - gw_sse_run: the life of one stream on its connection thread:
      connection_status, replay after Last-Event-ID, then live events.

    Resync: when events a client asked for are gone (history incomplete,
    another broadcaster epoch, broadcaster unreachable, a gap history cannot
    fill), the stream sends `session_updated {sessionId, status: "resync",
    resync: true, timestamp}` so the client refetches state from the store.
    That event carries NO id line (the browser keeps its last real id), except
    after an incomplete replay where it carries the id of the newest event
    the broadcaster still holds, so a later reconnect resumes from there.  */
#ifndef GW_SSE_H_INCLUDED
#define GW_SSE_H_INCLUDED

#include "cm_codec.h"
#include "cm_curve.h"
#include "cm_ids.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  ---------------------------------------------------------------------
//  Framing

//  A malloc'd SSE frame; id NULL or "" omits the id line. NULL when id or
//  type hold CR/LF (they would break the framing) or on out-of-memory.
char *gw_sse_format (const char *id, const char *type, const json_t *data, size_t *len);

//  ---------------------------------------------------------------------
//  Events

typedef struct gw_event gw_event_t;

//  From a broadcaster event envelope (type "event", payload {event, data})
//  and its id ("<epoch>-<seq>", or NULL/"" for none). 0, CM_EPROTO (not an
//  event, bad id) or CM_ENOMEM.
int gw_event_new (const char *id, const cm_envelope_t *envelope, gw_event_t **out);
//  From a history entry {id, body: bin (encoded event envelope)}.
int gw_event_from_history (const cm_value_t *entry, gw_event_t **out);
//  A gateway-made event (connection_status, session_updated). data is
//  borrowed. NULL on out-of-memory.
gw_event_t *gw_event_synthetic (const char *id, const char *type, const json_t *data);

gw_event_t *gw_event_ref (gw_event_t *self);
void gw_event_unref (gw_event_t **self_p);

//  Accessors; borrowed, valid while a reference is held.
const char *gw_event_id (const gw_event_t *self);      //  "" when none
bool gw_event_has_id (const gw_event_t *self);
cm_event_id_t gw_event_eid (const gw_event_t *self);
const char *gw_event_type (const gw_event_t *self);
const char *gw_event_task_id (const gw_event_t *self); //  data.taskId or ""
const char *gw_event_frame (const gw_event_t *self, size_t *len);

//  ---------------------------------------------------------------------
//  Cursor

typedef struct {
    bool known;
    cm_event_id_t last;
} gw_cursor_t;

typedef enum {
    GW_CURSOR_SEND,      //  the next one (or the first one)
    GW_CURSOR_DUPLICATE, //  at or before the last one sent
    GW_CURSOR_GAP,       //  same epoch, but seq > last + 1
    GW_CURSOR_EPOCH      //  another broadcaster epoch
} gw_cursor_verdict_t;

gw_cursor_verdict_t gw_cursor_check (const gw_cursor_t *self, cm_event_id_t id);
void gw_cursor_advance (gw_cursor_t *self, cm_event_id_t id);

//  ---------------------------------------------------------------------
//  Stream queue

typedef struct gw_stream gw_stream_t;

gw_stream_t *gw_stream_new (size_t max_bytes);
void gw_stream_destroy (gw_stream_t **self_p);
//  Queues a reference to event. 0, or CM_EFULL when the queue would pass
//  max_bytes: the stream is then overflowed, its queue dropped, and every
//  later pop returns CM_EFULL.
int gw_stream_push (gw_stream_t *self, gw_event_t *event);
//  Waits up to timeout_ms for an event. 0 with *event (caller unrefs),
//  CM_ETIMEOUT, CM_EFULL (overflowed) or CM_ECANCELLED (closed).
int gw_stream_pop (gw_stream_t *self, int timeout_ms, gw_event_t **event);
//  Wakes the stream's thread for good (shutdown).
void gw_stream_close (gw_stream_t *self);
//  The connection's socket, which writer threads may then write to while
//  the stream is attached (the caller keeps it open until after detach).
//  -1 (the default): the connection thread writes everything.
void gw_stream_set_fd (gw_stream_t *self, int fd);
//  True while writer threads own the stream's socket (tests).
bool gw_stream_is_fast (gw_stream_t *self);

//  ---------------------------------------------------------------------
//  Hub

typedef struct gw_hub gw_hub_t;

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

//  Starts the dispatcher thread with a SUB socket connected to endpoint,
//  and the writer threads. options may be NULL (defaults). NULL when the
//  endpoint is invalid or a thread cannot start.
gw_hub_t *gw_hub_new (const char *events_endpoint, cm_curve_t *curve,
                      const gw_hub_options_t *options);
//  Stops the dispatcher; streams must be detached before.
void gw_hub_destroy (gw_hub_t **self_p);
//  Adds a stream to session_id; subscribes when it is the session's first
//  local stream and returns after the dispatcher set the subscription.
//  0, or CM_ECANCELLED when the hub is shutting down.
int gw_hub_attach (gw_hub_t *self, const char *session_id, gw_stream_t *stream);
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
//  One stream's life

typedef struct {
    const char *session_id;
    const char *last_event_id;  //  NULL/"": no replay
    const char *until_task_id;  //  NULL: until the connection ends; else
                                //  until that task's terminal event
    int keepalive_ms;
    //  Writes bytes to the client; 0, or negative when the client is gone.
    int (*write) (void *arg, const char *data, size_t len);
    //  Asks the broadcaster's history for events after `after`; returns
    //  cm_call's code and on 0 the ok payload (caller destroys).
    int (*history) (void *arg, const char *after, cm_value_t **payload);
    //  Counts one event written (metrics); may be NULL.
    void (*delivered) (void *arg);
    //  NULL: the stream lives on the calling thread until it ends. Set:
    //  once the stream is on the fast path gw_sse_run returns
    //  GW_SSE_DETACHED and the hub owns the stream from then on (its
    //  slow-path threads write to the socket; see gw_hub); when the stream
    //  ends the hub detaches it, calls ended (the end is never
    //  GW_SSE_DETACHED or GW_SSE_DONE) and destroys it. arg (and
    //  session_id) must then stay valid until ended; write is no longer
    //  called after the detach.
    void (*ended) (void *arg, int end);
    void *arg;
} gw_sse_params_t;

typedef enum {
    GW_SSE_CLIENT_GONE,   //  a write failed
    GW_SSE_OVERFLOW,      //  slow reader: queue overflowed
    GW_SSE_CLOSED,        //  shutdown
    GW_SSE_DONE,          //  until_task_id ended
    GW_SSE_DETACHED       //  handed to the hub (params.ended set)
} gw_sse_end_t;

//  Writes connection_status, replays after last_event_id, then writes live
//  events from the (already attached) stream until one of gw_sse_end_t.
//  After GW_SSE_DETACHED the caller must not touch stream or params->arg.
gw_sse_end_t gw_sse_run (gw_stream_t *stream, const gw_sse_params_t *params);

#endif
