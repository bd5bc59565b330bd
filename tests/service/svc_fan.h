/*  svc_fan.h: many SSE readers on one epoll thread, for the tests that
    need a thousand streams (svc_fanout_kill), where svc_sse_open's thread
    and curl handle per reader would cost more than the gateways under test.

    A reader is a raw HTTP/1.1 GET on 127.0.0.1:port. The fan's thread
    reads every reader's socket as data comes, checks the head's status
    and parses the SSE blocks: per reader it keeps each event's id (epoch,
    seq) and type, and counts the resyncs (session_updated whose data has
    "resync": true). Data lines are parsed only for that.

    The thread starts with svc_fan_new. Reader state may be looked at only
    inside a svc_fan_wait check (the thread is held off meanwhile) or
    after svc_fan_stop (the thread has ended; nothing changes any more).
    No function asserts: the test says what must hold.                   */
#ifndef SVC_FAN_H_INCLUDED
#define SVC_FAN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct svc_fan svc_fan_t;

typedef struct {
    long long epoch, seq; //  the "<epoch>-<seq>" id; -1, -1 for an event without one
    int type;             //  svc_fan_type's number of the event's type
} svc_fan_event_t;

typedef struct {
    long status;             //  the head's HTTP status; 0 before it arrived
    bool closed;             //  the server ended the stream (EOF or reset)
    bool overflow;           //  a line passed 1 MB: the reader stopped parsing
    size_t resyncs;          //  session_updated events with "resync": true
    size_t count;            //  events so far
    svc_fan_event_t *events; //  count of them, oldest first
} svc_fan_reader_t;

//  A fan for up to capacity readers, its thread started. NULL on failure.
svc_fan_t *svc_fan_new (int capacity);
//  Stops the thread (if svc_fan_stop did not), closes every reader, frees
//  the fan. Sets *fan_p to NULL.
void svc_fan_destroy (svc_fan_t **fan_p);

//  Opens one more reader: connects to 127.0.0.1:port, sends GET path
//  (path as given, query included) with Accept: text/event-stream, token
//  (NULL: none) as a Bearer Authorization and last_event_id (NULL: none)
//  as Last-Event-ID. Its index (0, 1, ... in opening order), or -1 when
//  the fan is full or the connection or send failed.
int svc_fan_open (svc_fan_t *fan, int port, const char *path, const char *token,
                  const char *last_event_id);

//  The number of an event type name (the same name, the same number;
//  numbers start at 0), or -1 when 32 names are known already.
int svc_fan_type (svc_fan_t *fan, const char *name);

//  Calls check (reader, index, arg) for every reader, with the thread held
//  off, until each returned true (0) or timeout_ms passed (-1).
typedef bool (*svc_fan_check_fn) (const svc_fan_reader_t *reader, int index, void *arg);
int svc_fan_wait (svc_fan_t *fan, svc_fan_check_fn check, void *arg, int timeout_ms);

//  Ends the thread; the readers stay open but nothing is read any more.
void svc_fan_stop (svc_fan_t *fan);
//  The reader at index (borrowed, until svc_fan_destroy), or NULL. Only
//  inside a check or after svc_fan_stop (see above).
const svc_fan_reader_t *svc_fan_reader (svc_fan_t *fan, int index);
//  Readers opened.
int svc_fan_count (svc_fan_t *fan);

#endif
