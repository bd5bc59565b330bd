/*  bc_server.h: the broadcaster's logic, with no socket.

    The service (bc_service) feeds it what comes off its sockets:
    - bc_server_ingest: one message from the store, [session_id, envelope];
      it is checked, given its event id and kept in the history;
    - bc_server_handle: one request from the history ROUTER (`history`,
      `ping`); every request, even garbage, gets a reply envelope;
    - bc_server_tick: periodic pruning.
    It also keeps the counters that `ping` reports.                         */
#ifndef BC_SERVER_H_INCLUDED
#define BC_SERVER_H_INCLUDED

#include "bc_history.h"
#include "cm_codec.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bc_server bc_server_t;

//  Event ids as text: "<epoch>-<seq>", 20 + 1 + 20 digits and the NUL.
#define BC_EVENT_ID_SIZE 42

//  epoch: this broadcaster's start, reported by ping (event ids are the
//  store's). NULL on out-of-memory or bad limits.
bc_server_t *bc_server_new (uint64_t epoch, const bc_history_limits_t *limits);
void bc_server_destroy (bc_server_t **self_p);

//  Checks one store message: the session frame must be a valid session id
//  and the body an `event` envelope carrying the store's id (payload "id",
//  store/st_events.h). On success it is recorded and its id written into
//  event_id (BC_EVENT_ID_SIZE bytes). CM_EPROTO for a bad message (counted
//  as rejected, nothing recorded), BC_HISTORY_DUPLICATE for an id already held
//  (counted as duplicate, not to be published again), CM_ENOMEM.
int bc_server_ingest (bc_server_t *self, const void *session, size_t session_size,
                      const void *body, size_t body_size, int64_t now_ms, char *event_id,
                      size_t event_id_size);

//  Counts one store message rejected before ingest (e.g. wrong frame count).
void bc_server_reject (bc_server_t *self);

//  Counts one event published to subscribers (for `ping`).
void bc_server_count_out (bc_server_t *self);

//  Answers one encoded request. Always sets *reply (an `ok` or `error`
//  envelope the caller owns) unless memory runs out; returns 0, or the
//  error code the reply carries, or CM_ENOMEM with *reply NULL.
int bc_server_handle (bc_server_t *self, const void *body, size_t size, int64_t now_ms,
                      cm_envelope_t **reply);

//  Drops idle sessions; returns how many.
size_t bc_server_tick (bc_server_t *self, int64_t now_ms);

//  Counters.
uint64_t bc_server_events_in (const bc_server_t *self);
uint64_t bc_server_events_out (const bc_server_t *self);
uint64_t bc_server_events_rejected (const bc_server_t *self);
size_t bc_server_sessions (const bc_server_t *self);
uint64_t bc_server_epoch (const bc_server_t *self);
uint64_t bc_server_events_duplicate (const bc_server_t *self);

#endif
