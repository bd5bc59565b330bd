/*  cm_value.h: a small tree of typed values, the payload of every message.

    A value is nil, bool, int (int64), double, str (UTF-8, length-counted,
    always NUL-terminated too), bin (bytes), arr or map (string keys, insertion
    order kept). Containers own their children: destroying a container frees
    the whole tree. Functions that take a `cm_value_t *` child argument take
    ownership of it, even when they fail (the child is then destroyed), so a
    caller never has to clean up after a failed insert.

    Getters return borrowed pointers valid until the container is changed or
    destroyed. A getter on a missing key or a value of another type returns
    the given default (or NULL), never asserts: payloads come off the wire.  */
#ifndef CM_VALUE_H_INCLUDED
#define CM_VALUE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CM_T_NIL,
    CM_T_BOOL,
    CM_T_INT,
    CM_T_DBL,
    CM_T_STR,
    CM_T_BIN,
    CM_T_ARR,
    CM_T_MAP
} cm_type_t;

typedef struct cm_value cm_value_t;
struct cm_value {
    cm_type_t type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            char *ptr; //  NUL-terminated; len excludes the NUL
            size_t len;
        } s;
        struct {
            cm_value_t **items;
            char **keys; //  NULL for arrays
            size_t len;
            size_t cap;
        } c;
    } u;
};

//  Constructors. Return NULL only when memory is exhausted.
cm_value_t *cm_nil_new (void);
cm_value_t *cm_bool_new (bool b);
cm_value_t *cm_int_new (int64_t i);
cm_value_t *cm_dbl_new (double d);
cm_value_t *cm_str_new (const char *s); //  s NULL gives nil
cm_value_t *cm_strn_new (const char *s, size_t len);
cm_value_t *cm_bin_new (const void *data, size_t len);
cm_value_t *cm_arr_new (void);
cm_value_t *cm_map_new (void);

//  Deep copy; NULL on out-of-memory or NULL input.
cm_value_t *cm_value_dup (const cm_value_t *value);

//  Frees the tree and sets *value_p to NULL. Safe on NULL.
void cm_value_destroy (cm_value_t **value_p);

//  Structural equality (used by tests and by idempotency checks).
bool cm_value_equal (const cm_value_t *a, const cm_value_t *b);

//  Containers. Both return 0 or CM_ENOMEM/CM_EINVAL. Take ownership of child.
int cm_arr_push (cm_value_t *arr, cm_value_t *child);
//  Room for count items in an array or map without growing again (a
//  decoder knows the count). 0 or CM_ENOMEM/CM_EINVAL.
int cm_reserve (cm_value_t *container, size_t count);
//  Replaces an existing key's value.
int cm_map_set (cm_value_t *map, const char *key, cm_value_t *child);
int cm_map_set_str (cm_value_t *map, const char *key, const char *s);
int cm_map_set_strn (cm_value_t *map, const char *key, const char *s, size_t len);
int cm_map_set_int (cm_value_t *map, const char *key, int64_t i);
int cm_map_set_dbl (cm_value_t *map, const char *key, double d);
int cm_map_set_bool (cm_value_t *map, const char *key, bool b);
int cm_map_set_nil (cm_value_t *map, const char *key);
//  Removes and returns a key's value (caller owns it), or NULL.
cm_value_t *cm_map_take (cm_value_t *map, const char *key);

size_t cm_value_len (const cm_value_t *value); //  items or string bytes
const cm_value_t *cm_arr_at (const cm_value_t *arr, size_t index);
const char *cm_map_key_at (const cm_value_t *map, size_t index);
const cm_value_t *cm_map_value_at (const cm_value_t *map, size_t index);

const cm_value_t *cm_map_get (const cm_value_t *map, const char *key);
//  The string at key, or NULL when missing or not a string.
const char *cm_map_str (const cm_value_t *map, const char *key);
//  Same, but "" when missing; handy when building replies.
const char *cm_map_str_or (const cm_value_t *map, const char *key, const char *dflt);
int64_t cm_map_int (const cm_value_t *map, const char *key, int64_t dflt);
//  Accepts ints too (msgpack encoders may shrink 1.0 to 1).
double cm_map_dbl (const cm_value_t *map, const char *key, double dflt);
bool cm_map_bool (const cm_value_t *map, const char *key, bool dflt);

#endif
