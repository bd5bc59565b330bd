#include "cm_value.h"
#include "cm_error.h"

#include <stdlib.h>
#include <string.h>

/*  Memory layout (the writer builds and frees thousands of small trees a
    second, so allocations per node are what it costs):
    - a str/bin node and its bytes are one allocation (u.s.ptr points just
      past the node);
    - a container's children pointers are one block; for a map the block
      also holds the keys pointers and the key bytes themselves, behind a
      small header, so a key costs no allocation of its own:
          [s_keys_t][items: cap][keys: cap][key bytes: key_cap]
      The block grows by copying (key pointers rebased); bytes of a key
      removed by cm_map_take stay unused until the block is freed.        */

typedef struct {
    size_t key_used;
    size_t key_cap;
} s_keys_t;

#define S_FIRST_CAP 8       //  items of a container's first block
#define S_KEY_BYTES_EACH 16 //  key bytes reserved per item (NUL included)

static s_keys_t *
s_keys (const cm_value_t *map)
{
    return (s_keys_t *) map->u.c.items - 1;
}

static cm_value_t *
s_new (cm_type_t type)
{
    cm_value_t *self = malloc (sizeof *self);
    if (self) {
        self->type = type;
        self->u.c.items = NULL; //  also clears a scalar's bits; containers start empty
        self->u.c.keys = NULL;
        self->u.c.len = 0;
        self->u.c.cap = 0;
    }
    return self;
}

cm_value_t *cm_nil_new (void) { return s_new (CM_T_NIL); }

cm_value_t *
cm_bool_new (bool b)
{
    cm_value_t *self = s_new (CM_T_BOOL);
    if (self)
        self->u.b = b;
    return self;
}

cm_value_t *
cm_int_new (int64_t i)
{
    cm_value_t *self = s_new (CM_T_INT);
    if (self)
        self->u.i = i;
    return self;
}

cm_value_t *
cm_dbl_new (double d)
{
    cm_value_t *self = s_new (CM_T_DBL);
    if (self)
        self->u.d = d;
    return self;
}

static cm_value_t *
s_bytes_new (cm_type_t type, const void *data, size_t len)
{
    if (len > SIZE_MAX - sizeof (cm_value_t) - 1)
        return NULL;
    cm_value_t *self = malloc (sizeof *self + len + 1);
    if (!self)
        return NULL;
    self->type = type;
    self->u.s.ptr = (char *) (self + 1);
    if (len)
        memcpy (self->u.s.ptr, data, len);
    self->u.s.ptr[len] = 0;
    self->u.s.len = len;
    return self;
}

cm_value_t *
cm_str_new (const char *s)
{
    return s ? s_bytes_new (CM_T_STR, s, strlen (s)) : cm_nil_new ();
}

cm_value_t *
cm_strn_new (const char *s, size_t len)
{
    return s_bytes_new (CM_T_STR, s, len);
}

cm_value_t *
cm_bin_new (const void *data, size_t len)
{
    return s_bytes_new (CM_T_BIN, data, len);
}

cm_value_t *cm_arr_new (void) { return s_new (CM_T_ARR); }
cm_value_t *cm_map_new (void) { return s_new (CM_T_MAP); }

static void
s_block_free (cm_value_t *self)
{
    if (self->type == CM_T_MAP && self->u.c.items)
        free (s_keys (self));
    else
        free (self->u.c.items);
}

void
cm_value_destroy (cm_value_t **value_p)
{
    if (!value_p || !*value_p)
        return;
    cm_value_t *self = *value_p;
    if (self->type == CM_T_ARR || self->type == CM_T_MAP) {
        for (size_t i = 0; i < self->u.c.len; i++) {
            cm_value_t *child = self->u.c.items[i];
            //  Leaves need no recursion (most children are leaves).
            if (child->type == CM_T_ARR || child->type == CM_T_MAP)
                cm_value_destroy (&child);
            else
                free (child);
        }
        s_block_free (self);
    }
    free (self);
    *value_p = NULL;
}

cm_value_t *
cm_value_dup (const cm_value_t *value)
{
    if (!value)
        return NULL;
    switch (value->type) {
        case CM_T_NIL:
            return cm_nil_new ();
        case CM_T_BOOL:
            return cm_bool_new (value->u.b);
        case CM_T_INT:
            return cm_int_new (value->u.i);
        case CM_T_DBL:
            return cm_dbl_new (value->u.d);
        case CM_T_STR:
        case CM_T_BIN:
            return s_bytes_new (value->type, value->u.s.ptr, value->u.s.len);
        case CM_T_ARR:
        case CM_T_MAP: {
            cm_value_t *copy = s_new (value->type);
            if (!copy || cm_reserve (copy, value->u.c.len)) {
                cm_value_destroy (&copy);
                return NULL;
            }
            for (size_t i = 0; i < value->u.c.len; i++) {
                cm_value_t *child = cm_value_dup (value->u.c.items[i]);
                int rc = child ? 0 : CM_ENOMEM;
                if (rc == 0)
                    rc = value->type == CM_T_ARR
                           ? cm_arr_push (copy, child)
                           : cm_map_set (copy, value->u.c.keys[i], child);
                if (rc) {
                    cm_value_destroy (&copy);
                    return NULL;
                }
            }
            return copy;
        }
    }
    return NULL;
}

bool
cm_value_equal (const cm_value_t *a, const cm_value_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
        case CM_T_NIL:
            return true;
        case CM_T_BOOL:
            return a->u.b == b->u.b;
        case CM_T_INT:
            return a->u.i == b->u.i;
        case CM_T_DBL:
            return a->u.d == b->u.d;
        case CM_T_STR:
        case CM_T_BIN:
            return a->u.s.len == b->u.s.len
                   && memcmp (a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
        case CM_T_ARR:
        case CM_T_MAP:
            if (a->u.c.len != b->u.c.len)
                return false;
            for (size_t i = 0; i < a->u.c.len; i++) {
                if (a->type == CM_T_MAP && strcmp (a->u.c.keys[i], b->u.c.keys[i]))
                    return false;
                if (!cm_value_equal (a->u.c.items[i], b->u.c.items[i]))
                    return false;
            }
            return true;
    }
    return false;
}

//  Room for cap items and key_cap key bytes (maps), copying what is there.
static int
s_grow (cm_value_t *self, size_t cap, size_t key_cap)
{
    if (self->type == CM_T_ARR) {
        if (cap > SIZE_MAX / sizeof (cm_value_t *))
            return CM_ENOMEM;
        cm_value_t **items = realloc (self->u.c.items, cap * sizeof *items);
        if (!items)
            return CM_ENOMEM;
        self->u.c.items = items;
        self->u.c.cap = cap;
        return 0;
    }
    if (cap > (SIZE_MAX - sizeof (s_keys_t) - key_cap) / (2 * sizeof (char *)))
        return CM_ENOMEM;
    s_keys_t *head = malloc (sizeof *head + cap * 2 * sizeof (char *) + key_cap);
    if (!head)
        return CM_ENOMEM;
    cm_value_t **items = (cm_value_t **) (head + 1);
    char **keys = (char **) (items + cap);
    char *bytes = (char *) (keys + cap);
    head->key_used = 0;
    head->key_cap = key_cap;
    if (self->u.c.items) {
        s_keys_t *old = s_keys (self);
        char *old_bytes = (char *) (self->u.c.keys + self->u.c.cap);
        memcpy (items, self->u.c.items, self->u.c.len * sizeof *items);
        memcpy (bytes, old_bytes, old->key_used);
        for (size_t i = 0; i < self->u.c.len; i++)
            keys[i] = bytes + (self->u.c.keys[i] - old_bytes);
        head->key_used = old->key_used;
        free (old);
    }
    self->u.c.items = items;
    self->u.c.keys = keys;
    self->u.c.cap = cap;
    return 0;
}

//  Room for one more item whose key (maps) takes key_len + 1 bytes.
static int
s_reserve (cm_value_t *self, size_t key_len)
{
    size_t cap = self->u.c.cap;
    if (self->type == CM_T_ARR)
        return self->u.c.len < cap ? 0 : s_grow (self, cap ? cap * 2 : S_FIRST_CAP, 0);
    size_t used = self->u.c.items ? s_keys (self)->key_used : 0;
    size_t key_cap = self->u.c.items ? s_keys (self)->key_cap : 0;
    if (self->u.c.len < cap && key_cap - used > key_len)
        return 0;
    if (self->u.c.len == cap)
        cap = cap ? cap * 2 : S_FIRST_CAP;
    if (key_len >= SIZE_MAX / 4 - used)
        return CM_ENOMEM;
    size_t want = used + key_len + 1;
    key_cap = key_cap ? key_cap : cap * S_KEY_BYTES_EACH;
    while (key_cap < want)
        key_cap *= 2;
    if (key_cap < cap * S_KEY_BYTES_EACH)
        key_cap = cap * S_KEY_BYTES_EACH;
    return s_grow (self, cap, key_cap);
}

int
cm_reserve (cm_value_t *container, size_t count)
{
    if (!container || (container->type != CM_T_ARR && container->type != CM_T_MAP))
        return CM_EINVAL;
    if (count <= container->u.c.cap)
        return 0;
    size_t key_cap = container->u.c.items && container->type == CM_T_MAP
                         ? s_keys (container)->key_cap
                         : 0;
    if (count > SIZE_MAX / 4 / S_KEY_BYTES_EACH)
        return CM_ENOMEM;
    if (key_cap < count * S_KEY_BYTES_EACH)
        key_cap = count * S_KEY_BYTES_EACH;
    return s_grow (container, count, key_cap);
}

int
cm_arr_push (cm_value_t *arr, cm_value_t *child)
{
    if (!arr || arr->type != CM_T_ARR || !child) {
        cm_value_destroy (&child);
        return CM_EINVAL;
    }
    if (s_reserve (arr, 0)) {
        cm_value_destroy (&child);
        return CM_ENOMEM;
    }
    arr->u.c.items[arr->u.c.len++] = child;
    return 0;
}

static ssize_t
s_find (const cm_value_t *map, const char *key)
{
    if (!map || map->type != CM_T_MAP || !key)
        return -1;
    for (size_t i = 0; i < map->u.c.len; i++)
        if (map->u.c.keys[i][0] == key[0] && strcmp (map->u.c.keys[i], key) == 0)
            return (ssize_t) i;
    return -1;
}

int
cm_map_set (cm_value_t *map, const char *key, cm_value_t *child)
{
    if (!map || map->type != CM_T_MAP || !key || !child) {
        cm_value_destroy (&child);
        return CM_EINVAL;
    }
    ssize_t found = s_find (map, key);
    if (found >= 0) {
        cm_value_destroy (&map->u.c.items[found]);
        map->u.c.items[found] = child;
        return 0;
    }
    size_t key_len = strlen (key);
    if (s_reserve (map, key_len)) {
        cm_value_destroy (&child);
        return CM_ENOMEM;
    }
    s_keys_t *head = s_keys (map);
    char *key_copy = (char *) (map->u.c.keys + map->u.c.cap) + head->key_used;
    memcpy (key_copy, key, key_len + 1);
    head->key_used += key_len + 1;
    map->u.c.keys[map->u.c.len] = key_copy;
    map->u.c.items[map->u.c.len++] = child;
    return 0;
}

int
cm_map_set_str (cm_value_t *map, const char *key, const char *s)
{
    return cm_map_set (map, key, cm_str_new (s));
}

int
cm_map_set_strn (cm_value_t *map, const char *key, const char *s, size_t len)
{
    return cm_map_set (map, key, cm_strn_new (s, len));
}

int
cm_map_set_int (cm_value_t *map, const char *key, int64_t i)
{
    return cm_map_set (map, key, cm_int_new (i));
}

int
cm_map_set_dbl (cm_value_t *map, const char *key, double d)
{
    return cm_map_set (map, key, cm_dbl_new (d));
}

int
cm_map_set_bool (cm_value_t *map, const char *key, bool b)
{
    return cm_map_set (map, key, cm_bool_new (b));
}

int
cm_map_set_nil (cm_value_t *map, const char *key)
{
    return cm_map_set (map, key, cm_nil_new ());
}

cm_value_t *
cm_map_take (cm_value_t *map, const char *key)
{
    ssize_t found = s_find (map, key);
    if (found < 0)
        return NULL;
    cm_value_t *child = map->u.c.items[found];
    size_t tail = map->u.c.len - (size_t) found - 1;
    memmove (&map->u.c.items[found], &map->u.c.items[found + 1], tail * sizeof (cm_value_t *));
    memmove (&map->u.c.keys[found], &map->u.c.keys[found + 1], tail * sizeof (char *));
    map->u.c.len--;
    return child;
}

size_t
cm_value_len (const cm_value_t *value)
{
    if (!value)
        return 0;
    if (value->type == CM_T_STR || value->type == CM_T_BIN)
        return value->u.s.len;
    if (value->type == CM_T_ARR || value->type == CM_T_MAP)
        return value->u.c.len;
    return 0;
}

const cm_value_t *
cm_arr_at (const cm_value_t *arr, size_t index)
{
    if (!arr || (arr->type != CM_T_ARR && arr->type != CM_T_MAP) || index >= arr->u.c.len)
        return NULL;
    return arr->u.c.items[index];
}

const char *
cm_map_key_at (const cm_value_t *map, size_t index)
{
    if (!map || map->type != CM_T_MAP || index >= map->u.c.len)
        return NULL;
    return map->u.c.keys[index];
}

const cm_value_t *
cm_map_value_at (const cm_value_t *map, size_t index)
{
    if (!map || map->type != CM_T_MAP || index >= map->u.c.len)
        return NULL;
    return map->u.c.items[index];
}

const cm_value_t *
cm_map_get (const cm_value_t *map, const char *key)
{
    ssize_t found = s_find (map, key);
    return found < 0 ? NULL : map->u.c.items[found];
}

const char *
cm_map_str (const cm_value_t *map, const char *key)
{
    const cm_value_t *v = cm_map_get (map, key);
    return v && v->type == CM_T_STR ? v->u.s.ptr : NULL;
}

const char *
cm_map_str_or (const cm_value_t *map, const char *key, const char *dflt)
{
    const char *s = cm_map_str (map, key);
    return s ? s : dflt;
}

int64_t
cm_map_int (const cm_value_t *map, const char *key, int64_t dflt)
{
    const cm_value_t *v = cm_map_get (map, key);
    return v && v->type == CM_T_INT ? v->u.i : dflt;
}

double
cm_map_dbl (const cm_value_t *map, const char *key, double dflt)
{
    const cm_value_t *v = cm_map_get (map, key);
    if (v && v->type == CM_T_DBL)
        return v->u.d;
    if (v && v->type == CM_T_INT)
        return (double) v->u.i;
    return dflt;
}

bool
cm_map_bool (const cm_value_t *map, const char *key, bool dflt)
{
    const cm_value_t *v = cm_map_get (map, key);
    return v && v->type == CM_T_BOOL ? v->u.b : dflt;
}
