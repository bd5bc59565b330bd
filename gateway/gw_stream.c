#include "gw_stream.h"

#include "cm_error.h"
#include "cm_event.h"
#include "cm_log.h"
#include "cm_time.h"
#include "gw_hub.h"
#include "gw_stream_fsm.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Cursor

gw_cursor_verdict_t
gw_cursor_check (const gw_cursor_t *self, cm_event_id_t id)
{
    if (!self->known)
        return GW_CURSOR_SEND;
    if (id.epoch != self->last.epoch)
        return GW_CURSOR_EPOCH;
    if (id.seq <= self->last.seq)
        return GW_CURSOR_DUPLICATE;
    return id.seq == self->last.seq + 1 ? GW_CURSOR_SEND : GW_CURSOR_GAP;
}

void
gw_cursor_advance (gw_cursor_t *self, cm_event_id_t id)
{
    self->known = true;
    self->last = id;
}

//  ---------------------------------------------------------------------
//  Stream

typedef struct s_node {
    gw_event_t *event;
    struct s_node *next;
} s_node_t;

struct gw_stream {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    s_node_t *head, *tail;
    size_t bytes, max_bytes;
    //  Who serves the stream and how it ended (gw_stream_fsm.h): changed
    //  only under `lock`, only by s_apply. In the fast states a writer
    //  thread owns the socket and the cursor, otherwise the thread that
    //  serves the stream does.
    gw_stream_state_t state;
    int fd;
    gw_event_t *partial;   //  a frame a writer could send only in part
    size_t partial_off;
    gw_cursor_t cursor;
    int64_t last_write_ms; //  of the owner of the socket
    size_t shard;          //  writer thread, set on attach
    //  Detached streams (gw_stream.h; FAST, QUEUED, RUNNING): no connection
    //  thread. The table queues one for a slow-path thread only as it
    //  leaves FAST, so one thread at a time serves it.
    gw_hub_t *hub;         //  set on attach
    gw_stream_params_t params;
    gw_stream_t *slow_next;
};

gw_stream_t *
gw_stream_new (size_t max_bytes)
{
    gw_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    //  Waits are relative to CLOCK_MONOTONIC so a clock jump cannot stall
    //  keepalives.
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->ready, &attr);
    pthread_condattr_destroy (&attr);
    self->max_bytes = max_bytes;
    self->state = GW_SS_OWNED;
    self->fd = -1;
    return self;
}

static void
s_stream_clear (gw_stream_t *self)
{
    while (self->head) {
        s_node_t *node = self->head;
        self->head = node->next;
        gw_event_unref (&node->event);
        free (node);
    }
    self->tail = NULL;
    self->bytes = 0;
}

void
gw_stream_destroy (gw_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_stream_t *self = *self_p;
    s_stream_clear (self);
    gw_event_unref (&self->partial);
    pthread_cond_destroy (&self->ready);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
gw_stream_set_fd (gw_stream_t *self, int fd)
{
    pthread_mutex_lock (&self->lock);
    self->fd = fd;
    pthread_mutex_unlock (&self->lock);
}

bool
gw_stream_is_fast (gw_stream_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool fast = gw_stream_fsm_fast (self->state);
    pthread_mutex_unlock (&self->lock);
    return fast;
}

//  Appends event to the queue, the lock held. CM_ENOMEM.
static int
s_append (gw_stream_t *self, gw_event_t *event)
{
    s_node_t *node = malloc (sizeof *node);
    if (!node)
        return CM_ENOMEM;
    node->event = gw_event_ref (event);
    node->next = NULL;
    if (self->tail)
        self->tail->next = node;
    else
        self->head = node;
    self->tail = node;
    self->bytes += gw_event_len (event);
    return 0;
}

//  One step of the stream's table (gw_stream_fsm.h), the lock held: the
//  new state and its actions. event: the one PUSH appends, else NULL.
static void
s_apply (gw_stream_t *self, gw_stream_event_t what, gw_event_t *event)
{
    gw_stream_step_t step = gw_stream_fsm_step (self->state, what);
    //  A refused step is a bug in this file: the callers below only send
    //  what the table allows in the states they can see.
    assert (step.ok);
    if ((step.actions & GW_SA_APPEND) && s_append (self, event))
        //  Losing an event silently would desync the client: treat it as
        //  an overflow, the client reconnects and replays.
        step = gw_stream_fsm_step (self->state, GW_SE_OVERFLOW);
    self->state = step.next;
    //  Shutting the socket down also frees a thread blocked in a write to
    //  a reader that stopped reading, so the slot is given back at once.
    if (step.actions & GW_SA_SHUTDOWN) {
        s_stream_clear (self);
        if (self->fd >= 0)
            shutdown (self->fd, SHUT_RDWR);
    }
    if (step.actions & GW_SA_SIGNAL)
        pthread_cond_signal (&self->ready);
    if (step.actions & GW_SA_ENQUEUE)
        gw_hub_slow_enqueue (self->hub, self);
    if (step.actions & GW_SA_ADOPT)
        gw_hub_adopt (self->hub);
}

//  Queues for whoever serves the stream, the lock held: 0, or CM_EFULL
//  once the stream overflowed (an end drops the event).
static int
s_push (gw_stream_t *self, gw_event_t *event)
{
    size_t pending = self->partial ? gw_event_len (self->partial) - self->partial_off : 0;
    bool fits = self->bytes + pending + gw_event_len (event) <= self->max_bytes;
    s_apply (self, fits ? GW_SE_PUSH : GW_SE_OVERFLOW, event);
    return self->state == GW_SS_OVERFLOWED ? CM_EFULL : 0;
}

int
gw_stream_push (gw_stream_t *self, gw_event_t *event)
{
    pthread_mutex_lock (&self->lock);
    int rc = s_push (self, event);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

//  Takes the queue's first event; called with the lock held.
static gw_event_t *
s_take (gw_stream_t *self)
{
    s_node_t *node = self->head;
    if (!node)
        return NULL;
    self->head = node->next;
    if (!self->head)
        self->tail = NULL;
    self->bytes -= gw_event_len (node->event);
    gw_event_t *event = node->event;
    free (node);
    return event;
}

int
gw_stream_pop (gw_stream_t *self, int timeout_ms, gw_event_t **event)
{
    struct timespec deadline;
    cm_mono_deadline (&deadline, timeout_ms);
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    while (!self->head && self->state != GW_SS_OVERFLOWED && self->state != GW_SS_CLOSED)
        if (pthread_cond_timedwait (&self->ready, &self->lock, &deadline) == ETIMEDOUT)
            break;
    if (self->state == GW_SS_OVERFLOWED)
        rc = CM_EFULL;
    else if (self->state == GW_SS_CLOSED)
        rc = CM_ECANCELLED;
    else if (!self->head)
        rc = CM_ETIMEOUT;
    else
        *event = s_take (self);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

void
gw_stream_close (gw_stream_t *self)
{
    pthread_mutex_lock (&self->lock);
    s_apply (self, GW_SE_CLOSE, NULL);
    pthread_mutex_unlock (&self->lock);
}

//  ---------------------------------------------------------------------
//  Writer-side delivery (the stream's lock held)

//  Sends what it can without blocking. 1 all sent, 0 some or none sent
//  (*sent says how much), -1 the client is gone.
static int
s_send_some (int fd, const char *data, size_t len, size_t *sent)
{
    *sent = 0;
    while (*sent < len) {
        ssize_t n = send (fd, data + *sent, len - *sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            *sent += (size_t) n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        else
            return -1;
    }
    return 1;
}

//  Hands the socket back to whoever serves the stream with what is left
//  of `event` after `sent` bytes.
static void
s_hand_back (gw_stream_t *self, gw_event_t *event, size_t sent)
{
    self->partial = gw_event_ref (event);
    self->partial_off = sent;
    s_apply (self, GW_SE_HAND_BACK, NULL);
}

//  One live event for one stream, the lock held. Returns true when a
//  writer wrote it.
static bool
s_offer (gw_stream_t *self, gw_event_t *event, int64_t now)
{
    if (gw_stream_fsm_ended (self->state))
        return false;
    if (!gw_stream_fsm_fast (self->state)) {
        s_push (self, event);
        return false;
    }
    if (gw_event_has_id (event)) {
        gw_cursor_verdict_t verdict = gw_cursor_check (&self->cursor, gw_event_eid (event));
        if (verdict == GW_CURSOR_DUPLICATE)
            return false;
        if (verdict != GW_CURSOR_SEND) {
            //  A gap (history fill) or another epoch (resync): the
            //  serving thread's work, it may call the broadcaster. The
            //  push takes the socket back.
            s_push (self, event);
            return false;
        }
    }
    size_t len, sent;
    const char *frame = gw_event_frame (event, &len);
    int rc = s_send_some (self->fd, frame, len, &sent);
    if (rc < 0) {
        s_apply (self, GW_SE_GONE, NULL);
        return false;
    }
    if (gw_event_has_id (event))
        gw_cursor_advance (&self->cursor, gw_event_eid (event));
    if (rc == 0)
        s_hand_back (self, event, sent); //  the thread writes the rest
    else
        self->last_write_ms = now;
    return true;
}

bool
gw_stream_offer (gw_stream_t *self, gw_event_t *event, int64_t now_ms, bool *reached)
{
    pthread_mutex_lock (&self->lock);
    bool open = !gw_stream_fsm_ended (self->state);
    bool written = s_offer (self, event, now_ms);
    *reached = open && self->state != GW_SS_OVERFLOWED;
    pthread_mutex_unlock (&self->lock);
    return written;
}

//  Keepalive and dead-client check of a fast stream, the lock held.
static void
s_tend (gw_stream_t *self, gw_event_t *keepalive, int keepalive_ms, int64_t now)
{
    if (!gw_stream_fsm_fast (self->state) || now - self->last_write_ms < keepalive_ms)
        return;
    //  A closed client makes the socket readable with EOF; clients send
    //  nothing else on an event stream.
    char byte;
    ssize_t n = recv (self->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    size_t len, sent = 0;
    const char *frame = gw_event_frame (keepalive, &len);
    int rc = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                 ? -1
                 : s_send_some (self->fd, frame, len, &sent);
    if (rc < 0)
        s_apply (self, GW_SE_GONE, NULL);
    else if (rc == 0)
        s_hand_back (self, keepalive, sent);
    else
        self->last_write_ms = now;
}

void
gw_stream_tend (gw_stream_t *self, gw_event_t *keepalive, int keepalive_ms, int64_t now_ms)
{
    pthread_mutex_lock (&self->lock);
    s_tend (self, keepalive, keepalive_ms, now_ms);
    pthread_mutex_unlock (&self->lock);
}

//  ---------------------------------------------------------------------
//  One stream's life

typedef struct {
    const gw_stream_params_t *params;
    gw_stream_t *stream;
    gw_cursor_t *cursor;   //  the stream's; ours while not fast
    int64_t last_write_ms;
    bool failed;
    bool detached;         //  a slow-path thread: write to the socket itself
} s_run_t;

//  Give up on a reader that took nothing for this long (detached streams;
//  civetweb's request_timeout_ms did this for connection threads).
#define S_STALL_MS 30000

//  A blocking write to a detached stream's socket, from a slow-path
//  thread. Waits in slices so shutdown is noticed; an overflow shuts the
//  socket down, which fails the send.
static int
s_fd_write (gw_stream_t *stream, const char *data, size_t len)
{
    size_t off = 0;
    int64_t since = cm_mono_ms ();
    while (off < len) {
        ssize_t n = send (stream->fd, data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t) n;
            since = cm_mono_ms ();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (gw_hub_closing (stream->hub) || cm_mono_ms () - since > S_STALL_MS)
                return -1;
            struct pollfd item = {.fd = stream->fd, .events = POLLOUT};
            poll (&item, 1, 250);
            continue;
        }
        return -1;
    }
    return 0;
}

static int
s_write (s_run_t *run, const char *data, size_t len)
{
    if (run->failed)
        return -1;
    int rc = run->detached ? s_fd_write (run->stream, data, len)
                           : run->params->write (run->params->arg, data, len);
    if (rc < 0) {
        run->failed = true;
        return -1;
    }
    run->last_write_ms = cm_mono_ms ();
    return 0;
}

static int
s_write_event (s_run_t *run, const gw_event_t *event)
{
    size_t len;
    const char *frame = gw_event_frame (event, &len);
    int rc = s_write (run, frame, len);
    if (rc == 0 && run->params->delivered)
        run->params->delivered (run->params->arg);
    return rc;
}

static int
s_write_status (s_run_t *run, const char *id, cm_event_t type, const char *status, bool resync)
{
    char now[CM_ISO_TIME_LEN + 1];
    cm_iso_time (cm_now_ms (), now, sizeof now);
    json_t *data = resync ? json_pack ("{s:s, s:s, s:b, s:s}", "sessionId",
                                       run->params->session_id, "status", status, "resync", 1,
                                       "timestamp", now)
                          : json_pack ("{s:s, s:s, s:s}", "status", status, "sessionId",
                                       run->params->session_id, "timestamp", now);
    gw_event_t *event = data ? gw_event_synthetic (id, cm_event_name (type), data) : NULL;
    json_decref (data);
    if (!event)
        return s_write (run, ": status event lost\n\n", 21); //  keep the stream alive
    int rc = s_write_event (run, event);
    gw_event_unref (&event);
    return rc;
}

static int
s_resync (s_run_t *run, const char *id)
{
    return s_write_status (run, id, CM_EVENT_SESSION_UPDATED, "resync", true);
}

//  Asks history for events after the cursor and writes the ones that
//  continue it. Returns true when history filled everything (complete, same
//  epoch), false when the client must resync.
static bool
s_fill (s_run_t *run, const char *after, const char *until, const char **newest_id, char *newest,
        size_t size)
{
    cm_value_t *payload = NULL;
    int rc = run->params->history (run->params->arg, after, until, &payload);
    if (rc || !payload) {
        cm_debug ("history after %s failed: %s (session=%s)", after ? after : "-",
                  cm_strerror (rc), run->params->session_id);
        cm_value_destroy (&payload);
        return false;
    }
    bool complete = cm_map_bool (payload, "complete", false);
    const cm_value_t *events = cm_map_get (payload, "events");
    size_t count = events && events->type == CM_T_ARR ? cm_value_len (events) : 0;
    if (newest_id && count) {
        snprintf (newest, size, "%s", cm_map_str_or (cm_arr_at (events, count - 1), "id", ""));
        *newest_id = newest;
    }
    if (!complete) {
        cm_debug ("history after %s is incomplete (session=%s)", after ? after : "-",
                  run->params->session_id);
        cm_value_destroy (&payload);
        return false;
    }
    for (size_t i = 0; i < count && !run->failed; i++) {
        gw_event_t *event = NULL;
        if (gw_event_from_history (cm_arr_at (events, i), &event)) {
            cm_debug ("history event %zu unreadable (session=%s)", i, run->params->session_id);
            complete = false; //  a hole we cannot show: resync
            continue;
        }
        if (gw_event_has_id (event)) {
            gw_cursor_verdict_t verdict = gw_cursor_check (run->cursor, gw_event_eid (event));
            if (verdict == GW_CURSOR_SEND) {
                s_write_event (run, event);
                gw_cursor_advance (run->cursor, gw_event_eid (event));
            }
            else if (verdict != GW_CURSOR_DUPLICATE) {
                cm_debug ("history event %s does not continue %lld-%lld (session=%s)",
                          gw_event_id (event), (long long) run->cursor->last.epoch,
                          (long long) run->cursor->last.seq, run->params->session_id);
                complete = false;
            }
        }
        gw_event_unref (&event);
    }
    cm_value_destroy (&payload);
    return complete;
}

static void
s_replay (s_run_t *run, const char *last_event_id)
{
    cm_event_id_t after;
    if (cm_event_id_parse (last_event_id, &after)) {
        s_resync (run, NULL);
        return;
    }
    gw_cursor_advance (run->cursor, after);
    char newest[64] = "";
    const char *newest_id = NULL;
    if (!s_fill (run, last_event_id, NULL, &newest_id, newest, sizeof newest)) {
        //  The client refetches state; resume live from the newest event
        //  the broadcaster holds (or from whatever comes next).
        cm_event_id_t id;
        if (newest_id && cm_event_id_parse (newest_id, &id) == 0) {
            s_resync (run, newest_id);
            gw_cursor_advance (run->cursor, id);
        }
        else {
            s_resync (run, NULL);
            run->cursor->known = false;
        }
    }
}

//  A live event: dedup, fill gaps from history, resync on epoch changes.
static void
s_live (s_run_t *run, gw_event_t *event)
{
    if (!gw_event_has_id (event)) {
        s_write_event (run, event);
        return;
    }
    cm_event_id_t id = gw_event_eid (event);
    gw_cursor_verdict_t verdict = gw_cursor_check (run->cursor, id);
    if (verdict == GW_CURSOR_DUPLICATE)
        return;
    if (verdict == GW_CURSOR_EPOCH)
        s_resync (run, NULL);
    else if (verdict == GW_CURSOR_GAP) {
        char after[48];
        cm_event_id_format (after, sizeof after, run->cursor->last);
        bool filled = s_fill (run, after, gw_event_id (event), NULL, NULL, 0);
        //  History may have covered this event already.
        verdict = gw_cursor_check (run->cursor, id);
        if (verdict == GW_CURSOR_DUPLICATE)
            return;
        //  Never skip silently past events nobody could give us.
        if (!filled || verdict == GW_CURSOR_GAP)
            s_resync (run, NULL);
    }
    if (s_write_event (run, event) == 0)
        gw_cursor_advance (run->cursor, id);
}

//  Gives back the stack pages below the current frame before a long park.
//  A connection thread touches tens of KB of stack while it checks the
//  token, the session and replays history; parked, it needs a few hundred
//  bytes. With 10,000 parked threads the difference is hundreds of MB of
//  RSS. Memory below the stack pointer is dead (beyond a margin for the
//  wait itself and signal frames), so MADV_DONTNEED is safe; pages fault
//  back in, zeroed, if the thread goes deep again.
static void
s_trim_stack (void)
{
    pthread_attr_t attr;
    if (pthread_getattr_np (pthread_self (), &attr))
        return;
    void *base = NULL;
    size_t size = 0;
    int rc = pthread_attr_getstack (&attr, &base, &size);
    pthread_attr_destroy (&attr);
    long page = sysconf (_SC_PAGESIZE);
    if (rc || !base || page <= 0)
        return;
    char here;
    uintptr_t mask = ~((uintptr_t) page - 1);
    uintptr_t low = ((uintptr_t) base + (uintptr_t) page - 1) & mask;
    uintptr_t sp = (uintptr_t) &here;
    //  1 KB is plenty for pthread_cond_wait and a signal frame (a signal
    //  handler going deeper faults its pages back in).
    if (sp < low + 2 * (uintptr_t) page || sp > (uintptr_t) base + size)
        return;
    uintptr_t high = (sp - 1024) & mask;
    if (high > low)
        madvise ((void *) low, high - low, MADV_DONTNEED);
}

static bool
s_is_done (const gw_stream_params_t *params, const gw_event_t *event)
{
    const char *type = gw_event_type (event);
    return params->until_task_id && *params->until_task_id
           && strcmp (gw_event_task_id (event), params->until_task_id) == 0
           && cm_event_terminal (cm_event_from_name (type, strlen (type)));
}

//  How a stream that reached an end reports it.
static gw_stream_end_t
s_end_of (gw_stream_state_t state)
{
    switch (state) {
    case GW_SS_OVERFLOWED:
        return GW_STREAM_END_OVERFLOW;
    case GW_SS_CLOSED:
        return GW_STREAM_END_CLOSED;
    case GW_SS_DONE:
        return GW_STREAM_END_DONE;
    default:
        return GW_STREAM_END_CLIENT_GONE;
    }
}

//  The stream's main loop, entered with its lock held (OWNED for a
//  connection thread, RUNNING for a slow-path one, or an end); returns
//  with it released. Writes the backlog, fills gaps, and hands the socket
//  to the writers when nothing is left (PARK, or with params->ended
//  RELEASE and GW_STREAM_END_DETACHED) until the stream ends.
static gw_stream_end_t
s_loop (s_run_t *run, bool may_go_fast)
{
    gw_stream_t *stream = run->stream;
    const gw_stream_params_t *params = run->params;
    bool trimmed = false;
    while (true) {
        //  A write that failed because the stream overflowed (its socket
        //  was shut down) or closed is reported as that: the end stays.
        if (run->failed)
            s_apply (stream, GW_SE_FAIL, NULL);
        if (gw_stream_fsm_ended (stream->state))
            break;
        if (stream->state == GW_SS_PARKED) {
            //  Writers write to the socket; they wake us only to hand it
            //  back (a gap, a full socket) or to end the stream.
            pthread_cond_wait (&stream->ready, &stream->lock);
            if (stream->state == GW_SS_OWNED)
                run->last_write_ms = stream->last_write_ms;
            continue;
        }
        gw_event_t *partial = stream->partial;
        size_t partial_off = stream->partial_off;
        stream->partial = NULL;
        gw_event_t *event = partial ? NULL : s_take (stream);
        if (!partial && !event) {
            if (may_go_fast && stream->fd >= 0) {
                stream->last_write_ms = run->last_write_ms;
                if (params->ended) {
                    //  No thread waits on a detached stream: the table
                    //  queues it for a slow-path thread when needed.
                    s_apply (stream, GW_SE_RELEASE, NULL);
                    pthread_mutex_unlock (&stream->lock);
                    return GW_STREAM_END_DETACHED;
                }
                s_apply (stream, GW_SE_PARK, NULL);
                if (!trimmed) {
                    s_trim_stack ();
                    trimmed = true;
                }
                continue;
            }
            int64_t idle = cm_mono_ms () - run->last_write_ms;
            int wait = params->keepalive_ms - (int) idle;
            if (wait > 0) {
                struct timespec deadline;
                cm_mono_deadline (&deadline, wait);
                pthread_cond_timedwait (&stream->ready, &stream->lock, &deadline);
                continue;
            }
        }
        pthread_mutex_unlock (&stream->lock);
        bool done = false;
        if (partial) {
            //  The rest of a frame a writer began: before anything else.
            //  (The writer counted it as delivered.)
            size_t len;
            const char *frame = gw_event_frame (partial, &len);
            s_write (run, frame + partial_off, len - partial_off);
            gw_event_unref (&partial);
        }
        else if (event) {
            s_live (run, event);
            done = s_is_done (params, event);
            gw_event_unref (&event);
        }
        else
            s_write (run, ": keepalive\n\n", 13);
        pthread_mutex_lock (&stream->lock);
        if (done && !run->failed)
            s_apply (stream, GW_SE_DONE, NULL);
    }
    gw_stream_end_t end = s_end_of (stream->state);
    pthread_mutex_unlock (&stream->lock);
    return end;
}

gw_stream_end_t
gw_stream_run (gw_stream_t *stream, const gw_stream_params_t *params)
{
    s_run_t run = {.params = params, .stream = stream, .cursor = &stream->cursor,
                   .last_write_ms = cm_mono_ms ()};
    //  The writers may take over once the backlog is written, unless this
    //  stream must look at every event itself (until_task_id).
    bool may_go_fast = !(params->until_task_id && *params->until_task_id);
    s_write_status (&run, NULL, CM_EVENT_CONNECTION_STATUS, "connected", false);
    if (params->last_event_id && *params->last_event_id)
        s_replay (&run, params->last_event_id);
    pthread_mutex_lock (&stream->lock);
    if (params->ended && may_go_fast) {
        //  Kept for the slow-path threads once detached.
        stream->params = *params;
        stream->params.last_event_id = NULL;
        run.params = &stream->params;
    }
    return s_loop (&run, may_go_fast);
}

//  ---------------------------------------------------------------------
//  The hub's side

void
gw_stream_bind (gw_stream_t *self, gw_hub_t *hub, size_t shard)
{
    self->hub = hub;
    self->shard = shard;
}

size_t gw_stream_shard (const gw_stream_t *self) { return self->shard; }

gw_stream_t **gw_stream_link (gw_stream_t *self) { return &self->slow_next; }

bool
gw_stream_resume (gw_stream_t *self)
{
    pthread_mutex_lock (&self->lock);
    s_apply (self, GW_SE_PICK, NULL);
    s_run_t run = {.params = &self->params, .stream = self, .cursor = &self->cursor,
                   .last_write_ms = self->last_write_ms, .detached = true};
    gw_stream_end_t end = s_loop (&run, true);
    if (end == GW_STREAM_END_DETACHED)
        return false;
    //  Ended: no writer touches it after the detach, and the table never
    //  queues a stream that has ended.
    gw_stream_params_t params = self->params;
    gw_hub_detach (self->hub, params.session_id, self);
    gw_stream_destroy (&self);
    params.ended (params.arg, (int) end);
    return true;
}
