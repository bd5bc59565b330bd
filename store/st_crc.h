/*  st_crc.h: CRC32C (Castagnoli), the checksum each stored record carries.

    st_crc32c runs the SSE4.2 crc32 instruction when the CPU has it (checked
    once, at the first call) and a slice-by-8 table otherwise; both give the
    same result. Start with crc = 0 and feed the previous result back to
    checksum several pieces as one: st_crc32c (st_crc32c (0, a, n), b, m)
    equals the CRC of a followed by b. Thread-safe.                        */
#ifndef ST_CRC_H_INCLUDED
#define ST_CRC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

uint32_t st_crc32c (uint32_t crc, const void *data, size_t len);

//  The table-driven path alone (the tests compare it with st_crc32c).
uint32_t st_crc32c_sw (uint32_t crc, const void *data, size_t len);

#endif
