/*  test_cm_value: maps and arrays keep order and keys through growth,
    takes and replacements (keys live in the container's block).         */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_value.h"

#include <stdio.h>
#include <string.h>

//  Key i: short ones, and every 7th one long (past the per-item reserve).
static void
s_key (char *key, size_t size, int i)
{
    if (i % 7 == 3) {
        int n = snprintf (key, size, "long_key_%d_", i);
        memset (key + n, 'k', 200);
        key[n + 200] = 0;
    }
    else
        snprintf (key, size, "k%d", i);
}

static void
test_map_grows_keeping_order_and_keys (void **state)
{
    (void) state;
    cm_value_t *map = cm_map_new ();
    char key[256];
    for (int i = 0; i < 1000; i++) {
        s_key (key, sizeof key, i);
        assert_int_equal (cm_map_set_int (map, key, i), 0);
    }
    assert_int_equal (cm_value_len (map), 1000);
    for (int i = 0; i < 1000; i++) {
        s_key (key, sizeof key, i);
        assert_string_equal (cm_map_key_at (map, (size_t) i), key);
        assert_int_equal (cm_map_int (map, key, -1), i);
    }
    //  Replacing keeps the position; taking closes the gap.
    assert_int_equal (cm_map_set_str (map, "k0", "zero"), 0);
    assert_string_equal (cm_map_str (map, "k0"), "zero");
    assert_string_equal (cm_map_key_at (map, 0), "k0");
    for (int i = 0; i < 1000; i += 2) {
        s_key (key, sizeof key, i);
        cm_value_t *taken = cm_map_take (map, key);
        assert_non_null (taken);
        cm_value_destroy (&taken);
    }
    assert_int_equal (cm_value_len (map), 500);
    for (int i = 1; i < 1000; i += 2) {
        s_key (key, sizeof key, i);
        assert_string_equal (cm_map_key_at (map, (size_t) i / 2), key);
    }
    //  Taken keys can come back (at the end).
    assert_int_equal (cm_map_set_nil (map, "k0"), 0);
    assert_string_equal (cm_map_key_at (map, 500), "k0");
    assert_null (cm_map_take (map, "k2"));

    cm_value_t *copy = cm_value_dup (map);
    assert_true (cm_value_equal (copy, map));
    assert_int_equal (cm_map_set_int (copy, "extra", 1), 0);
    assert_false (cm_value_equal (copy, map));
    cm_value_destroy (&copy);
    cm_value_destroy (&map);
    assert_null (map);
}

static void
test_strings_and_bins_hold_their_bytes (void **state)
{
    (void) state;
    cm_value_t *s = cm_strn_new ("a\0b", 3);
    assert_int_equal (cm_value_len (s), 3);
    assert_memory_equal (s->u.s.ptr, "a\0b", 4); //  NUL-terminated too
    cm_value_t *empty = cm_bin_new (NULL, 0);
    assert_int_equal (cm_value_len (empty), 0);
    assert_int_equal (empty->u.s.ptr[0], 0);
    cm_value_t *nil = cm_str_new (NULL);
    assert_int_equal (nil->type, CM_T_NIL);
    cm_value_t *arr = cm_arr_new ();
    assert_int_equal (cm_arr_push (arr, s), 0);
    assert_int_equal (cm_arr_push (arr, empty), 0);
    assert_int_equal (cm_arr_push (arr, nil), 0);
    cm_value_t *copy = cm_value_dup (arr);
    assert_true (cm_value_equal (copy, arr));
    assert_memory_equal (cm_arr_at (copy, 0)->u.s.ptr, "a\0b", 4);
    cm_value_destroy (&copy);
    cm_value_destroy (&arr);
}

static void
test_reserve_and_bad_arguments (void **state)
{
    (void) state;
    cm_value_t *arr = cm_arr_new ();
    assert_int_equal (cm_reserve (arr, 100), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal (cm_arr_push (arr, cm_int_new (i)), 0);
    assert_int_equal (cm_arr_at (arr, 299)->u.i, 299);
    cm_value_t *map = cm_map_new ();
    assert_int_equal (cm_map_set_int (map, "a", 1), 0);
    assert_int_equal (cm_reserve (map, 50), 0);
    assert_string_equal (cm_map_key_at (map, 0), "a");
    assert_int_equal (cm_map_set_int (map, "b", 2), 0);
    assert_int_equal (cm_map_int (map, "a", 0), 1);
    cm_value_t *scalar = cm_int_new (1);
    assert_int_equal (cm_reserve (scalar, 1), CM_EINVAL);
    assert_int_equal (cm_reserve (NULL, 1), CM_EINVAL);
    //  Inserting into a non-container consumes the child.
    assert_int_equal (cm_arr_push (scalar, cm_str_new ("x")), CM_EINVAL);
    assert_int_equal (cm_map_set (arr, "k", cm_str_new ("x")), CM_EINVAL);
    cm_value_destroy (&scalar);
    cm_value_destroy (&map);
    cm_value_destroy (&arr);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_map_grows_keeping_order_and_keys),
        cmocka_unit_test (test_strings_and_bins_hold_their_bytes),
        cmocka_unit_test (test_reserve_and_bad_arguments),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
