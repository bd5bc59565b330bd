/*  svc_tmpfs.h: a small tmpfs for the service tests of a full disk
    (svc_store_diskfull, svc_store_chaos), and a file that fills it.

    Mounting needs root: without it svc_tmpfs_mount fails with the reason
    and the test skips. None asserts, so a test says itself what must hold. */
#ifndef SVC_TMPFS_H_INCLUDED
#define SVC_TMPFS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char path[64]; //  the mount point, a new directory under /tmp
    bool mounted;
} svc_tmpfs_t;

//  Mounts a tmpfs of size_mib MiB on a new directory /tmp/<prefix>XXXXXX.
//  0, or -1 with the reason in why (the directory is removed again).
int svc_tmpfs_mount (svc_tmpfs_t *fs, const char *prefix, int size_mib, char *why, size_t why_size);

//  Unmounts (lazily) and removes the directory. Does nothing when not
//  mounted, so a teardown may call it whatever the test did.
void svc_tmpfs_unmount (svc_tmpfs_t *fs);

//  Writes path (created or truncated) until its file system has not a page
//  left: in 64 KiB writes, then halves down to single pages. -1 when path
//  cannot be opened.
int svc_tmpfs_fill (const char *path);

#endif
