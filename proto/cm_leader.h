/*  cm_leader.h: calling a store shard whose nodes form a Raft cluster:
    find the leader, follow "not leader" answers, fail over, and never
    acknowledge a write twice (docs/protocol.md, "Following the leader").

    A shard's endpoint list ("tcp://a:1,tcp://b:1,tcp://c:1") names every
    node. cm_leader_t holds the list, the index of the node last seen
    leading, and the highest applied_index a reply carried; it is
    shared by every thread that calls the shard (atomics, no lock). A call
    goes to the remembered leader and, by its answer:
    - OK, or any error but the three below: that is the answer.
    - CM_ENOTLEADER "leader is X": X becomes the remembered leader when it
      is an endpoint of the list (a reply never makes us connect anywhere
      else), and the call goes there; otherwise to the next endpoint.
    - CM_ENOTLEADER "leader unknown" (an election): the next endpoint,
      after CM_LEADER_ELECTION_WAIT_MS.
      Either way the request was not executed: always sent again.
    - no reply envelope, CM_EBACKEND (nothing was sent: no connection):
      the next endpoint that has not failed in this call.
    - no reply envelope, CM_ETIMEOUT (sent, no answer: it may have run):
      the next endpoint only when the request is safe to resend
      (cm_leader_resendable), else the answer is CM_ETIMEOUT.
    A transport failure also moves the remembered leader on, so the next
    call does not wait on a dead node first. Every send of a call shares
    the caller's budget (timeout_ms); a call sends at most
    CM_LEADER_ATTEMPTS (count) times and tries each endpoint at most once
    after a transport failure. When the sends or endpoints run out with
    only "not leader" answers, the call fails as CM_EBACKEND (no leader:
    the shard is unavailable, a 503). With one endpoint a call is one send,
    as before replication, unless the node says "not leader".

    Reads (CM_ACCESS_READ): with CM_READS_LEADER they go to the leader like
    writes, without "min_index" (a follower refuses such a read). With
    CM_READS_ANY they go round robin to any node (leaving out
    for CM_LEADER_DOWN_MS one that just failed) and carry
    "min_index", the highest applied_index seen on a write reply (0
    before one): a node that has not applied that far answers CM_ENOTLEADER
    (so the read follows the hint to the leader) and read-your-writes holds
    for every caller sharing this cm_leader_t. The store's half is
    store/st_reads.h. cm_leader_call takes applied_index out of the reply
    it returns (it is for this module, not for the caller's clients).    */
#ifndef CM_LEADER_H_INCLUDED
#define CM_LEADER_H_INCLUDED

#include "cm_codec.h"
#include "cm_rpc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Most nodes of one shard (a Raft cluster is 3 or 5).
#define CM_LEADER_ENDPOINTS_MAX 8
//  The two forms of an ENOTLEADER "message" (cm_error.h).
#define CM_LEADER_IS "leader is "
#define CM_LEADER_UNKNOWN "leader unknown"
//  Pause before asking another node while an election runs.
#define CM_LEADER_ELECTION_WAIT_MS 50
//  How long a node that did not answer (or could not be reached) is left
//  out of the round robin of CM_READS_ANY.
#define CM_LEADER_DOWN_MS 1000
//  Most sends of one call: each node once, and each once more after a
//  "not leader" (a leader that changed while the call went round).
#define CM_LEADER_ATTEMPTS(count) (2 * (count) + 1)
//  Payload fields: the store's applied Raft index on a write reply, and
//  the least index a read needs (CM_READS_ANY).
#define CM_LEADER_APPLIED_FIELD "applied_index"
#define CM_LEADER_MIN_FIELD "min_index"

typedef enum { CM_READS_LEADER, CM_READS_ANY } cm_reads_t;

#define CM_CFG_STORE_READS                                                             \
    {"CHATMESH_STORE_READS", "--store-reads", CM_CFG_STR, "leader", 3, 6,              \
     "where store reads go in a replicated shard: leader, or any node that has applied " \
     "this service's last write (docs/protocol.md)"}

//  "leader" or "any" into *out; 0 or CM_EINVAL.
int cm_reads_parse (const char *text, cm_reads_t *out);

//  An ENOTLEADER message: 1 with the leader's endpoint in endpoint
//  ("leader is tcp://10.0.0.2:7001"), 0 for "leader unknown", CM_EINVAL
//  for anything else (NULL, another text, an empty endpoint, one with a
//  comma or a space, one longer than size - 1 or CM_ENDPOINT_MAX bytes).
int cm_leader_hint_parse (const char *message, char *endpoint, size_t size);

//  May a request of this type that was sent and got no answer be sent
//  again (it may have run)? Reads; writes carrying an "idem_key" (the
//  store answers a repeat with the first outcome, st_idem.h); task_claim
//  (a lost claim's lease runs out and the task is claimed again) and the
//  fenced ends and checkpoints of a task (task_progress, task_complete,
//  task_fail: a repeat after the first committed is refused, CM_ELEASE,
//  never applied twice). Not: other writes without a key, rate_consume
//  (it would take two tokens), task_event (it would publish twice).
bool cm_leader_resendable (cm_msg_t type, const cm_value_t *payload);

typedef struct cm_leader cm_leader_t;

//  The shard's nodes from a comma list (empty items skipped), reads as
//  given. NULL when the list names none, more than CM_LEADER_ENDPOINTS_MAX,
//  one twice, one longer than CM_ENDPOINT_MAX, or out of memory.
cm_leader_t *cm_leader_new (const char *list, cm_reads_t reads);
void cm_leader_destroy (cm_leader_t **self_p);
//  Whether cm_leader_new would take list: 0, or CM_EINVAL with the reason
//  in why (for a setting's error message).
int cm_leader_check (const char *list, char *why, size_t why_size);

int cm_leader_count (const cm_leader_t *self);
//  Endpoint index (0 .. count-1), borrowed; NULL out of range.
const char *cm_leader_endpoint (const cm_leader_t *self, int index);
//  The index of endpoint in the list, or -1.
int cm_leader_find (const cm_leader_t *self, const char *endpoint);
//  The node last seen leading (0 until one is seen).
int cm_leader_current (const cm_leader_t *self);
//  The highest applied_index seen on a reply (0: none).
uint64_t cm_leader_applied (const cm_leader_t *self);
//  Counts since cm_leader_new: "not leader" answers, and sends that
//  failed for the node (nothing sent, or no answer in time).
uint64_t cm_leader_not_leader_total (const cm_leader_t *self);
uint64_t cm_leader_node_failures_total (const cm_leader_t *self);

//  What a call's answer from node index teaches: rc and reply as
//  cm_call gave them (reply NULL when none came). Remembers a named
//  leader, moves past a node that failed, keeps a write's applied_index.
//  Returns the node to ask next, or -1 when the answer is final (OK or
//  the node's own error). For callers that send themselves (the
//  regenerator's long-poll claim keeps late replies); cm_leader_call
//  uses it for every send.
int cm_leader_observe (cm_leader_t *self, int index, int rc, const cm_envelope_t *reply);

//  One send of request to node index, waiting at most timeout_ms:
//  cm_call's contract (0 with *reply OK; a negative code with *reply the
//  ERROR envelope; CM_EBACKEND / CM_ETIMEOUT / CM_EPROTO with no reply).
//  Any other code with no reply (the sender's own trouble, not the
//  node's: no socket free) ends the call with that code.
typedef int (cm_leader_send_fn) (void *arg, int index, const cm_envelope_t *request,
                                 int timeout_ms, cm_envelope_t **reply);

//  The call as described above: request (its request_id set; a read may
//  get "min_index") sent through send. attempt_ms > 0 caps one send of a
//  resendable request while other nodes are left to try (a frozen node
//  then costs part of the budget, not all of it); <= 0: each send may
//  take what is left. cm_call's return contract; *sends (when not NULL)
//  gets the number of sends.
int cm_leader_call (cm_leader_t *self, cm_leader_send_fn *send, void *arg,
                    cm_envelope_t *request, int timeout_ms, int attempt_ms,
                    cm_envelope_t **reply, int *sends);

//  A single-threaded caller's sockets: one DEALER per node (cm_dealer_new_curve:
//  ZMQ_IMMEDIATE, linger 0), made on first use. A link is used by one
//  thread at a time; the cm_leader_t (and curve) it is given outlive it.
typedef struct cm_leader_link cm_leader_link_t;

//  How long a fresh DEALER may take to attach (within the budget) before
//  the send fails as CM_EBACKEND.
#define CM_LEADER_CONNECT_WAIT_MS 250

cm_leader_link_t *cm_leader_link_new (cm_leader_t *leader, cm_curve_t *curve, const char *server);
void cm_leader_link_destroy (cm_leader_link_t **self_p);
//  The DEALER of node index (made now if needed), borrowed; NULL when it
//  cannot be made.
zsock_t *cm_leader_link_socket (cm_leader_link_t *self, int index);
//  The same once it can send: attached to its node within
//  min(wait_ms, CM_LEADER_CONNECT_WAIT_MS); NULL otherwise.
zsock_t *cm_leader_link_attached (cm_leader_link_t *self, int index, int wait_ms);
//  cm_leader_call over the link's sockets (a cm_leader_send_fn).
int cm_leader_link_call (cm_leader_link_t *self, cm_envelope_t *request, int timeout_ms,
                         int attempt_ms, cm_envelope_t **reply);

#endif
