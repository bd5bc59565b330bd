/*  chatmesh-store: the only process that opens LMDB. main only wires:
    config -> server -> run -> destroy (or a hot backup with --backup, or
    a checksum scan with --verify, or the audit chain's with --verify-audit).                                        */
#include "st_chain.h"
#include "st_server.h"
#include "st_verify.h"

#include "cm_service.h"
#include "cm_error.h"
#include "cm_log.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>

static const cm_cfg_spec_t s_specs[] = {
    CM_CFG_COMMON,
    CM_CFG_STORE_ENDPOINT,
    CM_CFG_EVENTS_IN_ENDPOINT,
    {"CHATMESH_DATA_DIR", "--data-dir", CM_CFG_STR, "./data", 1, 4096, "data directory"},
    {"CHATMESH_STORE_DIR", "--store-dir", CM_CFG_STR, "", 0, 4096,
     "LMDB directory (default: $CHATMESH_DATA_DIR/store)"},
    {"CHATMESH_STORE_MAP_MB", "--store-map-mb", CM_CFG_INT, "64", 1, 1048576,
     "initial LMDB map size in MiB (grows by doubling when full)"},
    {"CHATMESH_STORE_SYNC", "--store-sync", CM_CFG_BOOL, "true", 0, 0,
     "fsync every commit (false: faster, but a machine crash may lose acknowledged "
     "commits or, per LMDB, corrupt the database)"},
    {"CHATMESH_STORE_READERS", "--store-readers", CM_CFG_INT, "2", 1, 16,
     "reader threads for read requests"},
    {"CHATMESH_STORE_EVENTS_KEEP", "--store-events-keep", CM_CFG_INT, "256", 1, 65536,
     "events kept per session for Last-Event-ID replays older than the broadcasters' history"},
    {"CHATMESH_TASK_LEASE_MS", "--task-lease-ms", CM_CFG_INT, "10000", 100, 3600000,
     "lease of a claimed task; renewed by every progress checkpoint"},
    {"CHATMESH_TASK_MAX_ATTEMPTS", "--task-max-attempts", CM_CFG_INT, "3", 1, 100,
     "claims of one task before it fails for good"},
    {"CHAT_ACTIONS_CLEANUP_INTERVAL", "--cleanup-interval", CM_CFG_INT, "3600", 0, 31536000,
     "seconds between cleanups (expired leases, old tasks and audit entries); 0 = never"},
    {"CHATMESH_RETENTION_SECONDS", "--retention-seconds", CM_CFG_INT, "604800", 60, 3153600000,
     "age after which finished tasks and audit entries are dropped"},
    {"CHATMESH_UNDO_SECONDS", "--undo-seconds", CM_CFG_INT, "30", 1, 86400,
     "how long a deleted message or session can be restored; the first cleanup after that "
     "purges it"},
    {"CHATMESH_STORE_PEERS", "--peers", CM_CFG_STR, "", 0, 2048,
     "replicate the store by raft over these nodes: a comma list of "
     "id=raft_host:port=client_endpoint, 1, 3 or 5 of them, the same on every node (empty: "
     "one store, no raft)"},
    {"CHATMESH_STORE_NODE_ID", "--node-id", CM_CFG_INT, "0", 0, 1000000000,
     "which item of CHATMESH_STORE_PEERS this node is (required with peers)"},
    {"CHATMESH_STORE_JOIN", "--join", CM_CFG_BOOL, "false", 0, 0,
     "this node joins a running cluster: it does not bootstrap, it waits with an empty raft "
     "dir until the leader adds it (chatmesh-cluster add); its peers list names the "
     "members and itself, any count"},
    {"CHATMESH_STORE_RAFT_SNAPSHOT_ENTRIES", "--raft-snapshot-entries", CM_CFG_INT, "4096", 8,
     1048576,
     "raft entries between two snapshots (an LMDB copy); as many are kept behind each for "
     "followers that lag"},
    {"CHATMESH_STORE_RAFT_ELECTION_MS", "--raft-election-ms", CM_CFG_INT, "1000", 100, 60000,
     "raft election timeout: how long followers wait for the leader before electing another"},
    {"CHATMESH_STORE_BACKUP", "--backup", CM_CFG_STR, "", 0, 4096,
     "write a consistent compacted copy of the live store into this directory (verified "
     "record by record; fails, leaving no data.mdb, if any record is damaged) and exit"},
    {"CHATMESH_STORE_VERIFY", "--verify", CM_CFG_STR, "", 0, 4096,
     "check every record of the store in this directory against its checksum, read-only; "
     "print each damaged one and a summary; exit 1 if anything is damaged, else 0"},
    {"CHATMESH_STORE_VERIFY_AUDIT", "--verify-audit", CM_CFG_STR, "", 0, 4096,
     "walk the hash chain of the audit log of the store in this directory, read-only; print "
     "the first broken link (a changed, removed or added entry) or that it is sound; exit 1 "
     "if broken, 2 if the store cannot be read, else 0"},
};

static int
s_mkdir (const char *path)
{
    if (mkdir (path, 0700) == 0 || errno == EEXIST)
        return 0;
    fprintf (stderr, "chatmesh-store: cannot create %s: %s\n", path, strerror (errno));
    return -1;
}

int
main (int argc, char **argv)
{
    cm_config_t *config = NULL;
    cm_curve_t *curve = NULL;
    int rc = cm_service_start (s_specs, sizeof s_specs / sizeof s_specs[0], argc, argv, "store",
                               "chatmesh store: sessions, messages, tasks in LMDB", &config,
                               &curve);
    if (rc >= 0)
        return rc;

    char dir[4200];
    const char *store_dir = cm_config_str (config, "CHATMESH_STORE_DIR");
    const char *data_dir = cm_config_str (config, "CHATMESH_DATA_DIR");
    if (*store_dir)
        snprintf (dir, sizeof dir, "%s", store_dir);
    else
        snprintf (dir, sizeof dir, "%s/store", data_dir);

    const char *verify = cm_config_str (config, "CHATMESH_STORE_VERIFY");
    if (*verify) {
        st_verify_counts_t counts = {0};
        rc = st_verify_path (verify, false, stdout, &counts);
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return rc ? 1 : 0;
    }
    const char *verify_audit = cm_config_str (config, "CHATMESH_STORE_VERIFY_AUDIT");
    if (*verify_audit) {
        st_chain_report_t report;
        rc = st_chain_verify_path (verify_audit, stdout, &report);
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return rc == 0 ? 0 : rc == CM_ECORRUPT ? 1 : 2;
    }
    const char *backup = cm_config_str (config, "CHATMESH_STORE_BACKUP");
    if (*backup) {
        rc = st_db_backup (dir, backup);
        if (rc == 0)
            cm_notice ("backup of %s written to %s", dir, backup);
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return rc ? 1 : 0;
    }
    if ((!*store_dir && s_mkdir (data_dir)) || s_mkdir (dir)) {
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return 1;
    }

    st_peers_t peers;
    const char *peers_text = cm_config_str (config, "CHATMESH_STORE_PEERS");
    uint64_t node_id = (uint64_t) cm_config_int (config, "CHATMESH_STORE_NODE_ID");
    bool join = cm_config_bool (config, "CHATMESH_STORE_JOIN");
    if (join && !*peers_text) {
        fprintf (stderr, "chatmesh-store: CHATMESH_STORE_JOIN needs CHATMESH_STORE_PEERS\n");
        rc = 1;
    }
    else if (*peers_text) {
        char why[512];
        if ((join ? st_peers_parse_join : st_peers_parse) (peers_text, &peers, why, sizeof why)) {
            fprintf (stderr, "chatmesh-store: CHATMESH_STORE_PEERS: %s\n", why);
            rc = 1;
        }
        else if (!st_peers_find (&peers, node_id)) {
            fprintf (stderr,
                     "chatmesh-store: CHATMESH_STORE_NODE_ID %llu is not an id of "
                     "CHATMESH_STORE_PEERS\n",
                     (unsigned long long) node_id);
            rc = 1;
        }
    }
    if (rc == 1) {
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return 1;
    }
    st_server_config_t server_config = {
        .endpoint = cm_config_str (config, "CHATMESH_STORE_ENDPOINT"),
        .events_endpoint = cm_config_str (config, "CHATMESH_EVENTS_IN_ENDPOINT"),
        .dir = dir,
        .map_bytes = (size_t) cm_config_int (config, "CHATMESH_STORE_MAP_MB") << 20,
        .sync = cm_config_bool (config, "CHATMESH_STORE_SYNC"),
        .readers = (int) cm_config_int (config, "CHATMESH_STORE_READERS"),
        .curve = curve,
        .cleanup_interval_ms = cm_config_int (config, "CHAT_ACTIONS_CLEANUP_INTERVAL") * 1000,
        .ops = {.lease_ms = cm_config_int (config, "CHATMESH_TASK_LEASE_MS"),
                .max_attempts = (int) cm_config_int (config, "CHATMESH_TASK_MAX_ATTEMPTS"),
                .retention_ms = cm_config_int (config, "CHATMESH_RETENTION_SECONDS") * 1000,
                .events_keep = (size_t) cm_config_int (config, "CHATMESH_STORE_EVENTS_KEEP"),
                .undo_ms = cm_config_int (config, "CHATMESH_UNDO_SECONDS") * 1000,
                .worker_live_ms = 30000},
        .peers = *peers_text ? &peers : NULL,
        .node_id = node_id,
        .join = join,
        .raft_snapshot_entries
        = (unsigned) cm_config_int (config, "CHATMESH_STORE_RAFT_SNAPSHOT_ENTRIES"),
        .raft_election_ms = (unsigned) cm_config_int (config, "CHATMESH_STORE_RAFT_ELECTION_MS"),
    };
    st_server_t *server = st_server_new (&server_config);
    if (!server) {
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return 1;
    }
    st_server_run (server);
    st_server_destroy (&server);
    cm_curve_destroy (&curve);
    cm_config_destroy (&config);
    return 0;
}
