/*  st_det.c: deterministic sources while an entry applies (st_det.h).  */
#include "st_det.h"

#include "cm_error.h"

#include <string.h>
#include <sys/random.h>

typedef struct {
    bool active;
    uint64_t state;
    uint64_t stream; //  the seed's second half, mixed into every draw
    int64_t now;
} s_det_t;

static _Thread_local s_det_t s_det;

static uint64_t
s_load64 (const unsigned char *bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = value << 8 | bytes[i];
    return value;
}

static uint64_t
s_next (void)
{
    uint64_t z = (s_det.state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (z ^ (z >> 31)) ^ s_det.stream;
}

void
st_det_begin (const unsigned char seed[ST_DET_SEED_BYTES], int64_t now_ms)
{
    s_det.active = true;
    s_det.state = s_load64 (seed);
    s_det.stream = s_load64 (seed + 8);
    s_det.now = now_ms;
}

void
st_det_end (void)
{
    memset (&s_det, 0, sizeof s_det);
}

bool
st_det_bytes (void *out, size_t size)
{
    if (!s_det.active)
        return false;
    unsigned char *bytes = out;
    while (size > 0) {
        uint64_t word = s_next ();
        size_t n = size < 8 ? size : 8;
        memcpy (bytes, &word, n);
        bytes += n;
        size -= n;
    }
    return true;
}

int64_t
st_det_now (int64_t fallback)
{
    return s_det.active ? s_det.now : fallback;
}

int
st_det_seed_new (unsigned char seed[ST_DET_SEED_BYTES])
{
    size_t got = 0;
    while (got < ST_DET_SEED_BYTES) {
        ssize_t n = getrandom (seed + got, ST_DET_SEED_BYTES - got, 0);
        if (n <= 0)
            return CM_EIO;
        got += (size_t) n;
    }
    return 0;
}
