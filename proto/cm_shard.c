/*  cm_shard.c: shard list parsing and rendezvous ranking (cm_shard.h).  */
#include "cm_shard.h"

#include "cm_error.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool
s_name_valid (const char *name, size_t len)
{
    if (len < 1 || len > CM_SHARD_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int
s_fail (char *why, size_t why_size, const char *item, size_t len, const char *what)
{
    snprintf (why, why_size, "store shard \"%.*s\": %s", (int) (len > 64 ? 64 : len), item,
              what);
    return CM_EINVAL;
}

//  True when endpoint (len bytes) is one of the endpoints already listed.
static bool
s_endpoint_seen (const cm_shards_t *out, const char *endpoint, size_t len)
{
    for (int i = 0; i < out->count; i++) {
        const char *p = out->shards[i].endpoint;
        while (*p) {
            size_t n = strcspn (p, ",");
            if (n == len && memcmp (p, endpoint, len) == 0)
                return true;
            p += n + (p[n] == ',');
        }
    }
    return false;
}

int
cm_shards_parse (const char *list, const char *fallback, cm_shards_t *out, char *why,
                 size_t why_size)
{
    memset (out, 0, sizeof *out);
    if (!list || !*list) {
        if (!fallback || !*fallback || strlen (fallback) > CM_ENDPOINT_MAX)
            return s_fail (why, why_size, "", 0, "no store endpoint");
        out->count = 1;
        snprintf (out->shards[0].name, sizeof out->shards[0].name, "%s", CM_SHARD_DEFAULT_NAME);
        snprintf (out->shards[0].endpoint, sizeof out->shards[0].endpoint, "%s", fallback);
        return 0;
    }
    const char *p = list;
    while (true) {
        size_t len = strcspn (p, ",");
        const char *item = p;
        while (len > 0 && *item == ' ') {
            item++;
            len--;
        }
        while (len > 0 && item[len - 1] == ' ')
            len--;
        if (len == 0)
            return s_fail (why, why_size, "", 0, "empty item in the list");
        const char *eq = memchr (item, '=', len);
        const char *endpoint = eq ? eq + 1 : item;
        size_t endpoint_len = eq ? len - (size_t) (eq - item) - 1 : len;
        if (endpoint_len == 0)
            return s_fail (why, why_size, item, len, "no endpoint after '='");
        if (memchr (endpoint, '=', endpoint_len))
            return s_fail (why, why_size, item, len, "more than one '='");
        if (s_endpoint_seen (out, endpoint, endpoint_len))
            return s_fail (why, why_size, item, len, "endpoint listed twice");
        cm_shard_t *shard;
        if (eq) {
            size_t name_len = (size_t) (eq - item);
            if (!s_name_valid (item, name_len))
                return s_fail (why, why_size, item, len,
                               "name must be 1..32 characters of a-z, 0-9, '_' and '-'");
            for (int i = 0; i < out->count; i++)
                if (strlen (out->shards[i].name) == name_len
                    && memcmp (out->shards[i].name, item, name_len) == 0)
                    return s_fail (why, why_size, item, len, "name listed twice");
            if (out->count == CM_SHARDS_MAX)
                return s_fail (why, why_size, item, len, "more than 16 shards");
            shard = &out->shards[out->count++];
            memcpy (shard->name, item, name_len);
        }
        else {
            if (out->count == 0)
                return s_fail (why, why_size, item, len,
                               "a standby endpoint needs a name=endpoint before it");
            shard = &out->shards[out->count - 1];
        }
        size_t used = strlen (shard->endpoint);
        if (used + (used > 0) + endpoint_len > CM_ENDPOINT_MAX)
            return s_fail (why, why_size, item, len, "endpoint list longer than 255 bytes");
        if (used)
            shard->endpoint[used++] = ',';
        memcpy (shard->endpoint + used, endpoint, endpoint_len);
        shard->endpoint[used + endpoint_len] = 0;
        p = item + len;
        p += strcspn (p, ",");
        if (!*p)
            return 0;
        p++;
    }
}

//  FNV-1a over name, a 0 separator and key, then the splitmix64 finaliser:
//  FNV alone leaves the high bits of similar inputs correlated, and the
//  comparison of scores looks at the high bits first.
uint64_t
cm_shard_score (const char *name, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h = (h ^ 0) * 0x100000001b3ULL;
    for (const unsigned char *p = (const unsigned char *) key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

void
cm_shards_rank (const cm_shards_t *shards, const char *key, int order[CM_SHARDS_MAX])
{
    uint64_t score[CM_SHARDS_MAX];
    for (int i = 0; i < shards->count; i++) {
        score[i] = cm_shard_score (shards->shards[i].name, key);
        order[i] = i;
    }
    //  Insertion sort: at most 16 entries.
    for (int i = 1; i < shards->count; i++) {
        int moving = order[i], j = i;
        while (j > 0) {
            int prev = order[j - 1];
            bool after = score[prev] < score[moving]
                         || (score[prev] == score[moving]
                             && strcmp (shards->shards[prev].name, shards->shards[moving].name)
                                    > 0);
            if (!after)
                break;
            order[j] = prev;
            j--;
        }
        order[j] = moving;
    }
}

int
cm_shards_pick (const cm_shards_t *shards, const char *key)
{
    int order[CM_SHARDS_MAX];
    cm_shards_rank (shards, key, order);
    return order[0];
}

int
cm_shards_find (const cm_shards_t *shards, const char *name)
{
    for (int i = 0; i < shards->count; i++)
        if (strcmp (shards->shards[i].name, name) == 0)
            return i;
    return -1;
}
