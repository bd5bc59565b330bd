#include "bc_history.h"
#include "cm_error.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t seq;
    int64_t at_ms;
    void *body;
    size_t size;
} s_event_t;

//  A session: a ring of events plus its place in the activity list. The list
//  is kept in order of last event (head = least recently active), so both the
//  idle prune and the session cap only ever look at the head.
typedef struct s_session s_session_t;
struct s_session {
    char id[CM_SESSION_ID_MAX + 1];
    s_event_t *ring;
    size_t cap;      //  ring slots allocated (grows up to max_events)
    size_t head;     //  index of the oldest held event
    size_t count;    //  events held
    uint64_t epoch;  //  of the held events (and of last_seq)
    uint64_t last_seq; //  of the newest held event (0: none held yet)
    int64_t last_ms; //  time of the last append
    s_session_t *prev, *next;
};

struct bc_history {
    bc_history_limits_t limits;
    zhashx_t *sessions; //  id -> s_session_t (not owned by the hash)
    s_session_t *oldest, *newest;
};

static void
s_session_free (s_session_t **session_p)
{
    s_session_t *session = *session_p;
    if (!session)
        return;
    for (size_t i = 0; i < session->count; i++)
        free (session->ring[(session->head + i) % session->cap].body);
    free (session->ring);
    free (session);
    *session_p = NULL;
}

static void
s_unlink (bc_history_t *self, s_session_t *session)
{
    if (session->prev)
        session->prev->next = session->next;
    else
        self->oldest = session->next;
    if (session->next)
        session->next->prev = session->prev;
    else
        self->newest = session->prev;
    session->prev = session->next = NULL;
}

static void
s_link_newest (bc_history_t *self, s_session_t *session)
{
    session->prev = self->newest;
    session->next = NULL;
    if (self->newest)
        self->newest->next = session;
    else
        self->oldest = session;
    self->newest = session;
}

static void
s_drop_session (bc_history_t *self, s_session_t *session)
{
    s_unlink (self, session);
    zhashx_delete (self->sessions, session->id);
    s_session_free (&session);
}

static void
s_drop_front (s_session_t *session)
{
    s_event_t *event = &session->ring[session->head];
    free (event->body);
    event->body = NULL;
    session->head = (session->head + 1) % session->cap;
    session->count--;
}

static void
s_drop_old (const bc_history_t *self, s_session_t *session, int64_t now_ms)
{
    while (session->count
           && now_ms - session->ring[session->head].at_ms > self->limits.max_age_ms)
        s_drop_front (session);
}

//  Makes room for one more event: drops the oldest at max_events, else grows
//  the ring (doubling, so a session that sends 3 events costs 3-4 slots and
//  not max_events of them).
static int
s_make_room (const bc_history_t *self, s_session_t *session)
{
    if (session->count == self->limits.max_events) {
        s_drop_front (session);
        return 0;
    }
    if (session->count < session->cap)
        return 0;
    size_t cap = session->cap ? session->cap * 2 : 4;
    if (cap > self->limits.max_events)
        cap = self->limits.max_events;
    s_event_t *ring = calloc (cap, sizeof *ring);
    if (!ring)
        return CM_ENOMEM;
    for (size_t i = 0; i < session->count; i++)
        ring[i] = session->ring[(session->head + i) % session->cap];
    free (session->ring);
    session->ring = ring;
    session->cap = cap;
    session->head = 0;
    return 0;
}

bc_history_t *
bc_history_new (const bc_history_limits_t *limits)
{
    if (!limits || limits->max_events < 1 || limits->max_age_ms < 1
        || limits->max_sessions < 1)
        return NULL;
    bc_history_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->limits = *limits;
    self->sessions = zhashx_new ();
    if (!self->sessions) {
        free (self);
        return NULL;
    }
    return self;
}

void
bc_history_destroy (bc_history_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bc_history_t *self = *self_p;
    s_session_t *session = self->oldest;
    while (session) {
        s_session_t *next = session->next;
        s_session_free (&session);
        session = next;
    }
    zhashx_destroy (&self->sessions);
    free (self);
    *self_p = NULL;
}

size_t
bc_history_sessions (const bc_history_t *self)
{
    return zhashx_size (self->sessions);
}

size_t
bc_history_session_events (const bc_history_t *self, const char *session_id)
{
    s_session_t *session = zhashx_lookup (self->sessions, session_id);
    return session ? session->count : 0;
}

int
bc_history_append (bc_history_t *self, const char *session_id, cm_event_id_t id,
                   const void *body, size_t size, int64_t now_ms)
{
    if (!cm_session_id_valid (session_id) || id.seq == 0)
        return CM_EINVAL;
    s_session_t *session = zhashx_lookup (self->sessions, session_id);
    if (session && session->epoch == id.epoch && id.seq <= session->last_seq)
        return BC_HISTORY_DUPLICATE;
    void *copy = malloc (size ? size : 1);
    if (!copy)
        return CM_ENOMEM;
    if (size)
        memcpy (copy, body, size);

    if (session) {
        s_unlink (self, session);
        //  Not the next event of the held range: start the range again.
        if (session->epoch != id.epoch || id.seq != session->last_seq + 1)
            while (session->count)
                s_drop_front (session);
    }
    else {
        while (zhashx_size (self->sessions) >= self->limits.max_sessions && self->oldest)
            s_drop_session (self, self->oldest);
        session = calloc (1, sizeof *session);
        if (!session) {
            free (copy);
            return CM_ENOMEM;
        }
        snprintf (session->id, sizeof session->id, "%s", session_id);
        if (zhashx_insert (self->sessions, session->id, session)) {
            free (session);
            free (copy);
            return CM_ENOMEM;
        }
    }
    s_link_newest (self, session);
    s_drop_old (self, session, now_ms);
    if (s_make_room (self, session)) {
        free (copy);
        return CM_ENOMEM;
    }
    s_event_t *event = &session->ring[(session->head + session->count) % session->cap];
    event->seq = id.seq;
    event->at_ms = now_ms;
    event->body = copy;
    event->size = size;
    session->count++;
    session->epoch = id.epoch;
    session->last_seq = id.seq;
    session->last_ms = now_ms;
    return 0;
}

int
bc_history_replay (bc_history_t *self, const char *session_id, const cm_event_id_t *after,
                   int64_t now_ms, bool *complete, bc_history_visit_fn *visit, void *arg)
{
    s_session_t *session = zhashx_lookup (self->sessions, session_id);
    if (session)
        s_drop_old (self, session, now_ms);
    uint64_t from_seq = 0; //  visit seqs > from_seq
    if (!after)
        *complete = true;
    else if (!session || after->epoch != session->epoch)
        //  Dropped, never held, or another store's id: whatever came after
        //  `after` is not here (the store's event log may have it).
        *complete = false;
    else {
        uint64_t first_seq = session->count ? session->ring[session->head].seq
                                            : session->last_seq + 1;
        *complete = after->seq + 1 >= first_seq && after->seq <= session->last_seq;
        //  Past what we hold: replay everything held, the caller asks on.
        from_seq = after->seq <= session->last_seq ? after->seq : 0;
    }
    if (!session)
        return 0;
    for (size_t i = 0; i < session->count; i++) {
        const s_event_t *held = &session->ring[(session->head + i) % session->cap];
        if (held->seq <= from_seq)
            continue;
        bc_event_t event = {{session->epoch, held->seq}, held->body, held->size};
        int rc = visit (&event, arg);
        if (rc)
            return rc;
    }
    return 0;
}

size_t
bc_history_prune (bc_history_t *self, int64_t now_ms)
{
    size_t dropped = 0;
    while (self->oldest && now_ms - self->oldest->last_ms > self->limits.max_age_ms) {
        s_drop_session (self, self->oldest);
        dropped++;
    }
    return dropped;
}
