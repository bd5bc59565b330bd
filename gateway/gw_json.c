#include "gw_json.h"

#include <math.h>

json_t *
gw_json_from_value (const cm_value_t *value)
{
    if (!value)
        return json_null ();
    switch (value->type) {
        case CM_T_NIL:
            return json_null ();
        case CM_T_BOOL:
            return json_boolean (value->u.b);
        case CM_T_INT:
            return json_integer ((json_int_t) value->u.i);
        case CM_T_DBL:
            //  JSON has no NaN or infinity.
            return isfinite (value->u.d) ? json_real (value->u.d) : json_null ();
        case CM_T_STR: {
            json_t *s = json_stringn (value->u.s.ptr, value->u.s.len);
            return s ? s : json_null ();
        }
        case CM_T_BIN:
            return json_null ();
        case CM_T_ARR: {
            json_t *arr = json_array ();
            if (!arr)
                return NULL;
            for (size_t i = 0; i < value->u.c.len; i++) {
                json_t *item = gw_json_from_value (value->u.c.items[i]);
                if (!item || json_array_append_new (arr, item)) {
                    json_decref (arr);
                    return NULL;
                }
            }
            return arr;
        }
        case CM_T_MAP: {
            json_t *obj = json_object ();
            if (!obj)
                return NULL;
            for (size_t i = 0; i < value->u.c.len; i++) {
                json_t *item = gw_json_from_value (value->u.c.items[i]);
                if (!item || json_object_set_new (obj, value->u.c.keys[i], item)) {
                    json_decref (obj);
                    return NULL;
                }
            }
            return obj;
        }
    }
    return json_null ();
}

cm_value_t *
gw_json_to_value (const json_t *json, int max_depth)
{
    if (!json)
        return NULL;
    switch (json_typeof (json)) {
        case JSON_NULL:
            return cm_nil_new ();
        case JSON_TRUE:
            return cm_bool_new (true);
        case JSON_FALSE:
            return cm_bool_new (false);
        case JSON_INTEGER:
            return cm_int_new ((int64_t) json_integer_value (json));
        case JSON_REAL:
            return cm_dbl_new (json_real_value (json));
        case JSON_STRING:
            return cm_strn_new (json_string_value (json), json_string_length (json));
        case JSON_ARRAY: {
            if (max_depth < 1)
                return NULL;
            cm_value_t *arr = cm_arr_new ();
            if (!arr)
                return NULL;
            size_t index;
            json_t *item;
            json_array_foreach (json, index, item) {
                cm_value_t *child = gw_json_to_value (item, max_depth - 1);
                if (!child || cm_arr_push (arr, child)) {
                    cm_value_destroy (&arr);
                    return NULL;
                }
            }
            return arr;
        }
        case JSON_OBJECT: {
            if (max_depth < 1)
                return NULL;
            cm_value_t *map = cm_map_new ();
            if (!map)
                return NULL;
            const char *key;
            json_t *item;
            json_object_foreach ((json_t *) json, key, item) {
                cm_value_t *child = gw_json_to_value (item, max_depth - 1);
                if (!child || cm_map_set (map, key, child)) {
                    cm_value_destroy (&map);
                    return NULL;
                }
            }
            return map;
        }
    }
    return NULL;
}

int
gw_json_depth (const json_t *json)
{
    int deepest = 0;
    if (json_is_array (json)) {
        size_t index;
        json_t *item;
        json_array_foreach (json, index, item) {
            int d = gw_json_depth (item);
            if (d > deepest)
                deepest = d;
        }
        return deepest + 1;
    }
    if (json_is_object (json)) {
        const char *key;
        json_t *item;
        json_object_foreach ((json_t *) json, key, item) {
            int d = gw_json_depth (item);
            if (d > deepest)
                deepest = d;
        }
        return deepest + 1;
    }
    return 0;
}

int
gw_json_text_depth (const char *text, size_t len, int limit)
{
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"')
            in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > deepest && (deepest = depth) > limit)
                break;
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    return deepest;
}
