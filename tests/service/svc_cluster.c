/*  svc_cluster.c: N real store nodes replicated by raft (svc_cluster.h).  */
#include "svc_cluster.h"

#include "cm_error.h"
#include "cm_rpc.h"
#include "cm_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int id;
    int raft_port, client_port;
    char endpoint[64];
    char dir[300];
    pid_t pid;
    zsock_t *dealer;
    bool joiner; //  started with CHATMESH_STORE_JOIN and every node's peers
} s_node_t;

struct svc_cluster {
    int n;
    char dir[256];
    char peers[1024];     //  the bootstrap nodes
    char peers_all[1024]; //  and the joiners
    char *env[32];
    size_t env_count;
    s_node_t nodes[SVC_CLUSTER_MAX];
    int guess; //  the node last seen leading
};

//  A free loopback TCP port (bind to 0, read it, close).
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr)
        || getsockname (fd, (struct sockaddr *) &addr, &len)) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    close (fd);
    return ntohs (addr.sin_port);
}

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

int
svc_cluster_spawn (svc_cluster_t *self, int i)
{
    s_node_t *node = &self->nodes[i];
    const char *bin_dir = getenv ("CHATMESH_BIN_DIR");
    if (!bin_dir || node->pid > 0)
        return -1;
    char binary[512], log[512];
    snprintf (binary, sizeof binary, "%s/store/chatmesh-store", bin_dir);
    snprintf (log, sizeof log, "%s/node%d.log", self->dir, node->id);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char peers[1100], join[32] = "CHATMESH_STORE_JOIN=1", id[64], endpoint[128], data[400], events[400];
        snprintf (peers, sizeof peers, "CHATMESH_STORE_PEERS=%s",
                  node->joiner ? self->peers_all : self->peers);
        if (node->joiner)
            putenv (join);
        snprintf (id, sizeof id, "CHATMESH_STORE_NODE_ID=%d", node->id);
        snprintf (endpoint, sizeof endpoint, "CHATMESH_STORE_ENDPOINT=%s", node->endpoint);
        snprintf (data, sizeof data, "CHATMESH_DATA_DIR=%s/data%d", self->dir, node->id);
        snprintf (events, sizeof events, "CHATMESH_EVENTS_IN_ENDPOINT=ipc://%s/events%d",
                  self->dir, node->id);
        putenv (peers), putenv (id), putenv (endpoint), putenv (data), putenv (events);
        for (size_t e = 0; e < self->env_count; e++)
            putenv (self->env[e]);
        FILE *out = freopen (log, "a", stderr);
        if (out)
            dup2 (fileno (stderr), STDOUT_FILENO);
        execl (binary, binary, (char *) NULL);
        _exit (127);
    }
    node->pid = pid;
    return 0;
}

int
svc_cluster_kill (svc_cluster_t *self, int i, int signal)
{
    s_node_t *node = &self->nodes[i];
    if (node->pid <= 0)
        return -1;
    kill (node->pid, signal);
    int status;
    for (int tries = 0; tries < 1000; tries++) {
        if (waitpid (node->pid, &status, WNOHANG) == node->pid) {
            node->pid = 0;
            //  A fresh socket: replies to the dead process's requests never come.
            zsock_destroy (&node->dealer);
            node->dealer = cm_dealer_new (node->endpoint);
            return 0;
        }
        usleep (10000);
    }
    kill (node->pid, SIGKILL);
    waitpid (node->pid, &status, 0);
    node->pid = 0;
    return -1;
}

int
svc_cluster_signal (svc_cluster_t *self, int i, int signal)
{
    return self->nodes[i].pid > 0 ? kill (self->nodes[i].pid, signal) : -1;
}

bool
svc_cluster_running (svc_cluster_t *self, int i)
{
    return self->nodes[i].pid > 0;
}

const char *
svc_cluster_endpoint (svc_cluster_t *self, int i)
{
    return self->nodes[i].endpoint;
}

const char *
svc_cluster_store_dir (svc_cluster_t *self, int i)
{
    return self->nodes[i].dir;
}

int
svc_cluster_call (svc_cluster_t *self, int i, const cm_envelope_t *request, int timeout_ms,
                  cm_envelope_t **reply)
{
    *reply = NULL;
    int rc = cm_call (self->nodes[i].dealer, request, timeout_ms, reply);
    return *reply ? 0 : rc; //  an error reply is a reply too
}

static cm_envelope_t *
s_ping_request (void)
{
    cm_envelope_t *ping = cm_envelope_new (CM_MSG_PING, NULL);
    char id[40];
    cm_request_id (id, sizeof id);
    snprintf (ping->request_id, sizeof ping->request_id, "%s", id);
    return ping;
}

//  The raft map of node i's ping (owned by *reply), or NULL.
static const cm_value_t *
s_ping_raft (svc_cluster_t *self, int i, cm_envelope_t **reply)
{
    *reply = NULL;
    if (self->nodes[i].pid <= 0)
        return NULL;
    cm_envelope_t *ping = s_ping_request ();
    int rc = svc_cluster_call (self, i, ping, 500, reply);
    cm_envelope_destroy (&ping);
    if (rc || (*reply)->type != CM_MSG_OK)
        return NULL;
    return cm_map_get ((*reply)->payload, "raft");
}

long long
svc_cluster_applied (svc_cluster_t *self, int i)
{
    cm_envelope_t *reply;
    const cm_value_t *raft = s_ping_raft (self, i, &reply);
    long long applied = raft ? cm_map_int (raft, "applied", -1) : -1;
    cm_envelope_destroy (&reply);
    return applied;
}

int
svc_cluster_reads_ready (svc_cluster_t *self, int i)
{
    cm_envelope_t *reply;
    const cm_value_t *raft = s_ping_raft (self, i, &reply);
    const cm_value_t *ready = raft ? cm_map_get (raft, "reads_ready") : NULL;
    int answer = ready && ready->type == CM_T_BOOL ? ready->u.b : -1;
    cm_envelope_destroy (&reply);
    return answer;
}

int
svc_cluster_leader (svc_cluster_t *self, long long *applied)
{
    int leader = -1;
    long long best_term = -1;
    for (int i = 0; i < self->n; i++) {
        cm_envelope_t *reply;
        const cm_value_t *raft = s_ping_raft (self, i, &reply);
        if (raft && strcmp (cm_map_str_or (raft, "role", ""), "leader") == 0
            && cm_map_int (raft, "term", 0) > best_term) {
            best_term = cm_map_int (raft, "term", 0);
            leader = i;
            if (applied)
                *applied = cm_map_int (raft, "applied", 0);
        }
        cm_envelope_destroy (&reply);
    }
    return leader;
}

static int
s_node_of (svc_cluster_t *self, const char *endpoint)
{
    for (int i = 0; i < self->n; i++)
        if (strcmp (self->nodes[i].endpoint, endpoint) == 0)
            return i;
    return -1;
}

int
svc_cluster_write (svc_cluster_t *self, const cm_envelope_t *request, int deadline_ms,
                   cm_envelope_t **reply, int *served)
{
    int64_t until = cm_mono_ms () + deadline_ms;
    int target = self->guess;
    *reply = NULL;
    while (cm_mono_ms () < until) {
        if (self->nodes[target].pid <= 0) {
            target = (target + 1) % self->n;
            continue;
        }
        cm_envelope_t *got = NULL;
        int rc = svc_cluster_call (self, target, request, 1000, &got);
        if (rc == 0 && got->type == CM_MSG_ERROR
            && cm_map_int (got->payload, "code", 0) == CM_ENOTLEADER) {
            const char *message = cm_map_str_or (got->payload, "message", "");
            int hinted = strncmp (message, "leader is ", 10) == 0 ? s_node_of (self, message + 10)
                                                                   : -1;
            cm_envelope_destroy (&got);
            if (hinted >= 0 && hinted != target)
                target = hinted;
            else {
                usleep (20000); //  an election is running: ask again shortly
                target = (target + 1) % self->n;
            }
            continue;
        }
        if (rc) {
            target = (target + 1) % self->n;
            continue;
        }
        self->guess = target;
        *reply = got;
        if (served)
            *served = target;
        return 0;
    }
    return CM_ETIMEOUT;
}

svc_cluster_t *
svc_cluster_start (int n, const char *const *env)
{
    return svc_cluster_start_joinable (n, 0, env);
}

svc_cluster_t *
svc_cluster_start_joinable (int n, int joiners, const char *const *env)
{
    if (n < 1 || joiners < 0 || n + joiners > SVC_CLUSTER_MAX)
        return NULL;
    svc_cluster_t *self = calloc (1, sizeof *self);
    self->n = n + joiners;
    snprintf (self->dir, sizeof self->dir, "/tmp/svc_cluster_XXXXXX");
    if (!mkdtemp (self->dir)) {
        free (self);
        return NULL;
    }
    for (size_t i = 0; env && env[i] && self->env_count < 32; i++)
        self->env[self->env_count++] = strdup (env[i]);
    size_t used = 0, used_all = 0;
    for (int i = 0; i < self->n; i++) {
        s_node_t *node = &self->nodes[i];
        node->id = i + 1;
        node->joiner = i >= n;
        node->raft_port = s_free_port ();
        node->client_port = s_free_port ();
        snprintf (node->endpoint, sizeof node->endpoint, "tcp://127.0.0.1:%d", node->client_port);
        snprintf (node->dir, sizeof node->dir, "%s/data%d/store", self->dir, node->id);
        if (!node->joiner)
            used += (size_t) snprintf (self->peers + used, sizeof self->peers - used,
                                       "%s%d=127.0.0.1:%d=%s", i ? "," : "", node->id,
                                       node->raft_port, node->endpoint);
        used_all += (size_t) snprintf (self->peers_all + used_all,
                                       sizeof self->peers_all - used_all, "%s%d=127.0.0.1:%d=%s",
                                       i ? "," : "", node->id, node->raft_port, node->endpoint);
        node->dealer = cm_dealer_new (node->endpoint);
    }
    for (int i = 0; i < n; i++)
        if (svc_cluster_spawn (self, i)) {
            svc_cluster_stop (&self);
            return NULL;
        }
    int64_t until = cm_mono_ms () + 10000;
    while (cm_mono_ms () < until && (self->guess = svc_cluster_leader (self, NULL)) < 0)
        usleep (50000);
    if (self->guess < 0) {
        fprintf (stderr, "svc_cluster: no leader within 10 s (logs in %s)\n", self->dir);
        self->guess = 0;
        svc_cluster_stop (&self);
        return NULL;
    }
    return self;
}

void
svc_cluster_stop (svc_cluster_t **self_p)
{
    svc_cluster_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->n; i++) {
        if (self->nodes[i].pid > 0)
            svc_cluster_kill (self, i, SIGTERM);
        zsock_destroy (&self->nodes[i].dealer);
    }
    if (!getenv ("CHATMESH_KEEP_TEST_DIR"))
        nftw (self->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf (stderr, "svc_cluster: kept %s\n", self->dir);
    for (size_t i = 0; i < self->env_count; i++)
        free (self->env[i]);
    free (self);
    *self_p = NULL;
}

int
svc_cluster_id (svc_cluster_t *self, int i)
{
    return self->nodes[i].id;
}

void
svc_cluster_raft_address (svc_cluster_t *self, int i, char *buffer, size_t size)
{
    snprintf (buffer, size, "127.0.0.1:%d", self->nodes[i].raft_port);
}
