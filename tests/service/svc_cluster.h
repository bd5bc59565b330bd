/*  svc_cluster.h: a replicated store of N real chatmesh-store nodes on
    random loopback ports, each in its own temp dir, and a client that
    talks ZeroMQ to whichever node leads (following "leader is X").

    Nodes are started with CHATMESH_STORE_PEERS naming all of them, their
    events pushed to an ipc:// endpoint nobody binds (zmq queues them).
    svc_cluster_call sends one request to one node; svc_cluster_write
    sends a write to the leader it knows, follows CM_ENOTLEADER hints and
    tries the next node on a timeout or "leader unknown", until a reply
    that is not one of those or the deadline.                            */
#ifndef SVC_CLUSTER_H_INCLUDED
#define SVC_CLUSTER_H_INCLUDED

#include "cm_codec.h"

#include <stdbool.h>
#include <stddef.h>

#define SVC_CLUSTER_MAX 5

typedef struct svc_cluster svc_cluster_t;

//  n nodes, extra "NAME=value" settings for every node (may be NULL). Waits
//  until one of them leads (10 s). NULL on failure (printed).
svc_cluster_t *svc_cluster_start (int n, const char *const *env);
//  The same n nodes, and joiners more (nodes n .. n+joiners-1) not started:
//  svc_cluster_spawn starts one with CHATMESH_STORE_JOIN=1 and peers that
//  name every node (it waits to be added, chatmesh-cluster add).
svc_cluster_t *svc_cluster_start_joinable (int n, int joiners, const char *const *env);
//  Node i's raft id and raft address ("127.0.0.1:port").
int svc_cluster_id (svc_cluster_t *self, int i);
void svc_cluster_raft_address (svc_cluster_t *self, int i, char *buffer, size_t size);
//  SIGTERM every running node, wait, remove the dir (kept when
//  CHATMESH_KEEP_TEST_DIR is set).
void svc_cluster_stop (svc_cluster_t **self_p);
//  Stops node i (0-based) with signal and reaps it. 0 or -1.
int svc_cluster_kill (svc_cluster_t *self, int i, int signal);
//  Sends signal to running node i without waiting (SIGSTOP, SIGCONT).
int svc_cluster_signal (svc_cluster_t *self, int i, int signal);
//  Starts node i again on its dir and ports. 0 or -1.
int svc_cluster_spawn (svc_cluster_t *self, int i);
bool svc_cluster_running (svc_cluster_t *self, int i);
//  The node's client endpoint, its LMDB directory.
const char *svc_cluster_endpoint (svc_cluster_t *self, int i);
const char *svc_cluster_store_dir (svc_cluster_t *self, int i);

//  One request to node i: 0 with *reply (OK or ERROR), or cm_call's
//  transport codes (CM_ETIMEOUT: no reply in time).
int svc_cluster_call (svc_cluster_t *self, int i, const cm_envelope_t *request, int timeout_ms,
                      cm_envelope_t **reply);
//  The node that says it leads (ping's raft.role) in the highest term, or
//  -1. *applied (may be NULL): its applied index.
int svc_cluster_leader (svc_cluster_t *self, long long *applied);
//  Node i's ping raft.reads_ready: 1, 0, or -1 (no answer).
int svc_cluster_reads_ready (svc_cluster_t *self, int i);
//  Node i's applied index by ping, or -1.
long long svc_cluster_applied (svc_cluster_t *self, int i);
//  The write through the leader (see above). 0 with *reply (which may be
//  an error reply other than ENOTLEADER: the caller judges), or
//  CM_ETIMEOUT at the deadline. *served: the node that answered.
int svc_cluster_write (svc_cluster_t *self, const cm_envelope_t *request, int deadline_ms,
                       cm_envelope_t **reply, int *served);

#endif
