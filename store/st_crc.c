#include "st_crc.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define S_HAVE_SSE42_PATH 1
#endif

//  Reflected polynomial of CRC32C.
#define S_POLY 0x82F63B78u

static uint32_t s_table[8][256];
static bool s_hw;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_init (void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (S_POLY & (0u - (crc & 1)));
        s_table[0][i] = crc;
    }
    //  s_table[k][i]: the CRC of byte i followed by k zero bytes, so eight
    //  bytes fold in with eight lookups and no per-bit loop.
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++)
            s_table[k][i] = (s_table[k - 1][i] >> 8) ^ s_table[0][s_table[k - 1][i] & 0xff];
#ifdef S_HAVE_SSE42_PATH
    __builtin_cpu_init ();
    s_hw = __builtin_cpu_supports ("sse4.2");
#endif
}

static uint32_t
s_sw (uint32_t crc, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t) p & 7)) {
        crc = (crc >> 8) ^ s_table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy (&lo, p, 4);
        memcpy (&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32 (lo);
        hi = __builtin_bswap32 (hi);
#endif
        lo ^= crc;
        crc = s_table[7][lo & 0xff] ^ s_table[6][(lo >> 8) & 0xff]
              ^ s_table[5][(lo >> 16) & 0xff] ^ s_table[4][lo >> 24]
              ^ s_table[3][hi & 0xff] ^ s_table[2][(hi >> 8) & 0xff]
              ^ s_table[1][(hi >> 16) & 0xff] ^ s_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ s_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#ifdef S_HAVE_SSE42_PATH
__attribute__ ((target ("sse4.2"))) static uint32_t
s_hw_crc (uint32_t crc, const unsigned char *p, size_t len)
{
    uint64_t c = crc;
    while (len && ((uintptr_t) p & 7)) {
        c = _mm_crc32_u8 ((uint32_t) c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy (&word, p, 8);
        c = _mm_crc32_u64 (c, word);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8 ((uint32_t) c, *p++);
    return (uint32_t) c;
}
#endif

uint32_t
st_crc32c_sw (uint32_t crc, const void *data, size_t len)
{
    pthread_once (&s_once, s_init);
    return ~s_sw (~crc, data, len);
}

uint32_t
st_crc32c (uint32_t crc, const void *data, size_t len)
{
    pthread_once (&s_once, s_init);
#ifdef S_HAVE_SSE42_PATH
    if (s_hw)
        return ~s_hw_crc (~crc, data, len);
#endif
    return ~s_sw (~crc, data, len);
}
