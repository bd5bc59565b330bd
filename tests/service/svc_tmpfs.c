/*  svc_tmpfs.c: a tmpfs for the disk-full tests (svc_tmpfs.h).         */

#include "svc_tmpfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

int
svc_tmpfs_mount (svc_tmpfs_t *fs, const char *prefix, int size_mib, char *why, size_t why_size)
{
    fs->mounted = false;
    snprintf (fs->path, sizeof fs->path, "/tmp/%sXXXXXX", prefix);
    if (!mkdtemp (fs->path)) {
        snprintf (why, why_size, "cannot make a directory %s: %s", fs->path, strerror (errno));
        return -1;
    }
    char options[32];
    snprintf (options, sizeof options, "size=%dm", size_mib);
    if (mount ("tmpfs", fs->path, "tmpfs", 0, options)) {
        snprintf (why, why_size, "cannot mount a tmpfs on %s: %s (it needs root)", fs->path,
                  strerror (errno));
        rmdir (fs->path);
        return -1;
    }
    fs->mounted = true;
    return 0;
}

void
svc_tmpfs_unmount (svc_tmpfs_t *fs)
{
    if (!fs->mounted)
        return;
    umount2 (fs->path, MNT_DETACH);
    rmdir (fs->path);
    fs->mounted = false;
}

int
svc_tmpfs_fill (const char *path)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    static char chunk[65536];
    memset (chunk, 'x', sizeof chunk);
    //  Down to single pages, so the disk is full to the last one.
    for (size_t n = sizeof chunk; n >= 4096; n /= 2)
        while (write (fd, chunk, n) == (ssize_t) n)
            ;
    close (fd);
    return 0;
}
