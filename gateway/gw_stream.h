/*  gw_stream.h: one browser's event stream, from connection_status to its end.

    A stream has a bounded queue of events (gw_event.h), a cursor over the
    "<epoch>-<seq>" ids it wrote (dedup, gap and epoch detection), and,
    when the connection's socket is known (gw_stream_set_fd), a fast path:
    the hub's writer threads (gw_hub.h) write each event's frame straight
    to the socket with a non-blocking send(). Who may write to the socket
    and touch the cursor changes hands only under the stream's mutex, as
    one state and one transition table (gw_stream_fsm.h):

    - The connection thread (civetweb's, in gw_stream_run) owns the stream
      while it writes connection_status, the replay after Last-Event-ID and
      any backlog. With nothing left and a socket known it hands the stream
      to the writers: it parks on the stream's condition variable, or, when
      params.ended is set, returns GW_STREAM_END_DETACHED and the hub owns
      the stream from then on (a live stream costs no thread).
    - A writer hands the stream back when a send would block (the rest of
      the frame and later events go to the queue), on a gap in the ids
      (history fill) or another epoch (resync), and when the client is
      gone: to the parked connection thread, or (detached) to one of the
      hub's slow-path threads (gw_stream_resume), which writes the queue
      with blocking writes, fills the gap, and hands the stream back to
      the writers, or ends it.
    - A queue that would pass its byte limit marks the stream overflowed
      and shuts its socket down, so a slow reader never slows the writers
      or the other readers; the client reconnects and replays.

    Streams without a known socket (fd -1) and streams that end on a task's
    terminal event (until_task_id) never take the fast path.

    Resync: when events a client asked for are gone (history incomplete,
    another broadcaster epoch, broadcaster unreachable, a gap history cannot
    fill), the stream sends `session_updated {sessionId, status: "resync",
    resync: true, timestamp}` so the client refetches state from the store.
    That event carries NO id line (the browser keeps its last real id), except
    after an incomplete replay where it carries the id of the newest event
    the broadcaster still holds, so a later reconnect resumes from there.  */
#ifndef GW_STREAM_H_INCLUDED
#define GW_STREAM_H_INCLUDED

#include "cm_codec.h"
#include "cm_ids.h"
#include "gw_event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_hub gw_hub_t;

//  ---------------------------------------------------------------------
//  Cursor: per-stream dedup and gap detection on "<epoch>-<seq>" ids

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
//  The stream and its queue (any thread)

typedef struct gw_stream gw_stream_t;

//  A stream whose queue holds at most max_bytes of frames. NULL on
//  out-of-memory.
gw_stream_t *gw_stream_new (size_t max_bytes);
//  Frees the stream and what it still queues; it must be detached from
//  the hub (or never attached). Sets *self_p to NULL.
void gw_stream_destroy (gw_stream_t **self_p);
//  Queues a reference to event (while the writers own the socket, that
//  takes it back first, so events stay in order; an ended stream drops
//  it). 0, or CM_EFULL when the queue would pass max_bytes: the stream is
//  then overflowed, its queue dropped, and every later pop returns
//  CM_EFULL.
int gw_stream_push (gw_stream_t *self, gw_event_t *event);
//  Waits up to timeout_ms for an event. 0 with *event (caller unrefs),
//  CM_ETIMEOUT, CM_EFULL (overflowed) or CM_ECANCELLED (closed).
int gw_stream_pop (gw_stream_t *self, int timeout_ms, gw_event_t **event);
//  Ends the stream for good (shutdown): whoever serves it is woken.
void gw_stream_close (gw_stream_t *self);
//  The connection's socket, which writer threads may then write to while
//  the stream is attached (the caller keeps it open until after detach).
//  -1 (the default): the connection thread writes everything.
void gw_stream_set_fd (gw_stream_t *self, int fd);
//  True while writer threads own the stream's socket (tests).
bool gw_stream_is_fast (gw_stream_t *self);

//  ---------------------------------------------------------------------
//  One stream's life (the connection thread)

typedef struct {
    const char *session_id;
    const char *last_event_id;  //  NULL/"": no replay
    const char *until_task_id;  //  NULL: until the connection ends; else
                                //  until that task's terminal event
    int keepalive_ms;
    //  Writes bytes to the client; 0, or negative when the client is gone.
    int (*write) (void *arg, const char *data, size_t len);
    //  Asks the broadcaster's history for events after `after` (up to the
    //  live event `until` that showed a gap, NULL on a replay: see
    //  gw_replay_fill); returns cm_call's code and on 0 the ok payload
    //  (caller destroys).
    int (*history) (void *arg, const char *after, const char *until, cm_value_t **payload);
    //  Counts one event written (metrics); may be NULL.
    void (*delivered) (void *arg);
    //  NULL: the stream lives on the calling thread until it ends. Set:
    //  once the stream is on the fast path gw_stream_run returns
    //  GW_STREAM_END_DETACHED and the hub owns the stream from then on
    //  (its slow-path threads write to the socket); when the stream ends
    //  the hub detaches it, calls ended (the end is never
    //  GW_STREAM_END_DETACHED or GW_STREAM_END_DONE) and destroys it. arg
    //  (and session_id) must then stay valid until ended; write is no
    //  longer called after the detach.
    void (*ended) (void *arg, int end);
    void *arg;
} gw_stream_params_t;

typedef enum {
    GW_STREAM_END_CLIENT_GONE, //  a write failed
    GW_STREAM_END_OVERFLOW,    //  slow reader: queue overflowed
    GW_STREAM_END_CLOSED,      //  shutdown
    GW_STREAM_END_DONE,        //  until_task_id ended
    GW_STREAM_END_DETACHED     //  handed to the hub (params.ended set)
} gw_stream_end_t;

//  Writes connection_status, replays after last_event_id, then writes live
//  events from the (already attached) stream until one of gw_stream_end_t.
//  After GW_STREAM_END_DETACHED the caller must not touch stream or
//  params->arg.
gw_stream_end_t gw_stream_run (gw_stream_t *self, const gw_stream_params_t *params);

//  ---------------------------------------------------------------------
//  The hub's side (gw_hub.c only)

//  Records the hub and writer shard on attach (under the hub's lock).
void gw_stream_bind (gw_stream_t *self, gw_hub_t *hub, size_t shard);
size_t gw_stream_shard (const gw_stream_t *self);
//  The link of the hub's slow-path queue (guarded by that queue's lock).
gw_stream_t **gw_stream_link (gw_stream_t *self);
//  A writer thread's fan-out step for one live event: writes it to the
//  socket when the writers own the stream, else queues it. Returns true
//  when a writer wrote it; *reached says whether the stream took it
//  (written, queued or a duplicate skipped), not closed, gone or
//  overflowed.
bool gw_stream_offer (gw_stream_t *self, gw_event_t *event, int64_t now_ms, bool *reached);
//  A writer thread's keepalive and dead-client check: on a stream the
//  writers own and that has been silent keepalive_ms, sends keepalive.
void gw_stream_tend (gw_stream_t *self, gw_event_t *keepalive, int keepalive_ms, int64_t now_ms);
//  A slow-path thread serves a detached stream that left the fast path
//  until it goes fast again (false) or ends (true: it was detached from
//  the hub, destroyed and params.ended was called).
bool gw_stream_resume (gw_stream_t *self);

#endif
