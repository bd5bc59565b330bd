/*  gw_shards_admin.c: the operators' views merged over shards
    (gw_shards_admin.h).  */
#include "gw_shards_admin.h"

#include "cm_error.h"
#include "cm_msg.h"

#include <stdlib.h>
#include <string.h>

bool
gw_shards_admin_merges (cm_msg_t type)
{
    return type == CM_MSG_ADMIN_AUDIT || type == CM_MSG_ADMIN_ANALYTICS
           || type == CM_MSG_ANALYTICS_TOTALS || type == CM_MSG_ADMIN_AUDIT_VERIFY;
}

//  ---------------------------------------------------------------------
//  admin_audit

static int
s_cursor_cmp (const void *a, const void *b)
{
    const char *x = cm_map_str_or (*(const cm_value_t *const *) a, "cursor", "");
    const char *y = cm_map_str_or (*(const cm_value_t *const *) b, "cursor", "");
    return -strcmp (x, y); //  newest (greatest key) first
}

cm_value_t *
gw_shards_admin_audit (cm_value_t *const *replies, int count, int64_t limit)
{
    //  The greatest cursor of a shard with more: below it, some shard's
    //  entries were not looked at yet.
    const char *boundary = NULL;
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        total += cm_value_len (cm_map_get (replies[i], "entries"));
        const char *next = cm_map_str (replies[i], "next_cursor");
        if (next && (!boundary || strcmp (next, boundary) > 0))
            boundary = next;
    }
    const cm_value_t **all = calloc (total ? total : 1, sizeof *all);
    cm_value_t *out = count > 0 ? cm_value_dup (replies[0]) : cm_map_new ();
    cm_value_t *entries = cm_arr_new ();
    if (!all || !out || !entries) {
        free (all);
        cm_value_destroy (&out);
        cm_value_destroy (&entries);
        return NULL;
    }
    size_t n = 0;
    for (int i = 0; i < count; i++) {
        const cm_value_t *page = cm_map_get (replies[i], "entries");
        for (size_t j = 0; j < cm_value_len (page); j++) {
            const cm_value_t *entry = cm_arr_at (page, j);
            if (!boundary || strcmp (cm_map_str_or (entry, "cursor", ""), boundary) >= 0)
                all[n++] = entry;
        }
    }
    qsort (all, n, sizeof *all, s_cursor_cmp);
    size_t shown = n < (size_t) limit ? n : (size_t) limit;
    int rc = 0;
    for (size_t j = 0; j < shown && rc == 0; j++) {
        cm_value_t *entry = cm_value_dup (all[j]);
        cm_value_t *place = entry ? cm_map_take (entry, "cursor") : NULL;
        cm_value_destroy (&place);
        rc = entry ? cm_arr_push (entries, entry) : CM_ENOMEM;
    }
    const char *next = shown < n ? cm_map_str_or (all[shown - 1], "cursor", "") : boundary;
    if (rc == 0)
        rc = next ? cm_map_set_str (out, "next_cursor", next) : cm_map_set_nil (out, "next_cursor");
    free (all);
    if (rc == 0)
        rc = cm_map_set (out, "entries", entries);
    else
        cm_value_destroy (&entries);
    if (rc)
        cm_value_destroy (&out);
    return out;
}

//  ---------------------------------------------------------------------
//  admin_analytics

//  The ranked lists of a model row: their text field and how many kept
//  (0: all).
static const struct {
    const char *list, *field;
    size_t top;
} s_ranked[] = {
    {"top_down_reasons", "reason", GW_SHARDS_TOP_REASONS},
    {"top_up_reasons", "reason", GW_SHARDS_TOP_REASONS},
    {"failures_by_cause", "cause", 0},
};

//  The per-answer rates of a model row (st_analytics.c).
static const struct {
    const char *rate, *counter;
} s_rates[] = {
    {"regenerate_rate", "regenerations"}, {"edit_rate", "edits"},       {"delete_rate", "deletes"},
    {"cancel_rate", "cancels"},           {"failure_rate", "failures"},
};

//  The quantiles of a model row, from its buckets.
static const struct {
    const char *name, *buckets;
    double q;
} s_quantiles[] = {
    {"p50_generation_ms", "gen_ms_buckets", 0.50},
    {"p95_generation_ms", "gen_ms_buckets", 0.95},
    {"p50_first_text_ms", "first_ms_buckets", 0.50},
    {"p95_first_text_ms", "first_ms_buckets", 0.95},
};

//  map[key] += add.
static int
s_add_int (cm_value_t *map, const char *key, int64_t add)
{
    return cm_map_set_int (map, key, cm_map_int (map, key, 0) + add);
}

//  The text field of a ranked list, or NULL when list is not one.
static const char *
s_ranked_field (const char *list)
{
    for (size_t i = 0; i < sizeof s_ranked / sizeof s_ranked[0]; i++)
        if (strcmp (s_ranked[i].list, list) == 0)
            return s_ranked[i].field;
    return NULL;
}

static bool
s_is_quantile (const char *name)
{
    for (size_t i = 0; i < sizeof s_quantiles / sizeof s_quantiles[0]; i++)
        if (strcmp (s_quantiles[i].name, name) == 0)
            return true;
    return false;
}

//  Adds one shard's row into sum: counters, buckets ({bound: count}) and
//  ranked lists (kept as {text: count} until s_finish).
static int
s_add_row (cm_value_t *sum, const cm_value_t *row)
{
    int rc = 0;
    for (size_t i = 0; i < cm_value_len (row) && rc == 0; i++) {
        const char *key = cm_map_key_at (row, i);
        const cm_value_t *value = cm_map_value_at (row, i);
        const char *field = s_ranked_field (key);
        if (value->type == CM_T_INT && !s_is_quantile (key))
            rc = s_add_int (sum, key, value->u.i);
        else if (value->type == CM_T_STR && !cm_map_get (sum, key))
            rc = cm_map_set_str (sum, key, cm_map_str (row, key)); //  the row's name
        else if ((value->type == CM_T_MAP || (value->type == CM_T_ARR && field))) {
            cm_value_t *counts = cm_map_take (sum, key);
            if (!counts)
                counts = cm_map_new ();
            for (size_t j = 0; counts && j < cm_value_len (value) && rc == 0; j++)
                rc = value->type == CM_T_MAP
                         ? s_add_int (counts, cm_map_key_at (value, j),
                                      cm_map_value_at (value, j)->u.i)
                         : s_add_int (counts, cm_map_str_or (cm_arr_at (value, j), field, ""),
                                      cm_map_int (cm_arr_at (value, j), "count", 0));
            rc = counts ? (rc ? (cm_value_destroy (&counts), rc) : cm_map_set (sum, key, counts))
                        : CM_ENOMEM;
        }
    }
    return rc;
}

typedef struct {
    const char *text;
    int64_t count;
} s_item_t;

static int
s_by_count (const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp (x->text, y->text);
}

//  {text: count} as [{field: text, count}], most first (ties by text), at
//  most top (0: all). NULL when out of memory.
static cm_value_t *
s_rank (const cm_value_t *counts, const char *field, size_t top)
{
    size_t n = cm_value_len (counts);
    s_item_t *items = calloc (n ? n : 1, sizeof *items);
    cm_value_t *list = items ? cm_arr_new () : NULL;
    for (size_t i = 0; list && i < n; i++)
        items[i] = (s_item_t) {cm_map_key_at (counts, i), cm_map_value_at (counts, i)->u.i};
    if (list)
        qsort (items, n, sizeof *items, s_by_count);
    for (size_t i = 0; list && i < n && (!top || i < top); i++) {
        cm_value_t *item = cm_map_new ();
        if (!item || cm_map_set_str (item, field, items[i].text)
            || cm_map_set_int (item, "count", items[i].count) || cm_arr_push (list, item)) {
            cm_value_destroy (&item);
            cm_value_destroy (&list);
        }
    }
    free (items);
    return list;
}

typedef struct {
    int64_t bound, count;
} s_bucket_t;

static int
s_by_bound (const void *a, const void *b)
{
    const s_bucket_t *x = a, *y = b;
    return x->bound < y->bound ? -1 : x->bound > y->bound;
}

//  row[name]: the bound of the bucket holding quantile q of buckets
//  ({bound: count}), as st_analytics.c takes it; nil without any.
static int
s_quantile (cm_value_t *row, const char *name, const cm_value_t *buckets, double q)
{
    size_t n = cm_value_len (buckets);
    s_bucket_t *items = calloc (n ? n : 1, sizeof *items);
    if (!items)
        return CM_ENOMEM;
    int64_t all = 0;
    for (size_t i = 0; i < n; i++) {
        items[i] = (s_bucket_t) {strtoll (cm_map_key_at (buckets, i), NULL, 10),
                                 cm_map_value_at (buckets, i)->u.i};
        all += items[i].count;
    }
    qsort (items, n, sizeof *items, s_by_bound);
    int64_t rank = (int64_t) ((double) all * q + 0.999999), seen = 0, bound = -1;
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; all && i < n && bound < 0; i++) {
        seen += items[i].count;
        if (seen >= rank)
            bound = items[i].bound;
    }
    free (items);
    return bound < 0 ? cm_map_set_nil (row, name) : cm_map_set_int (row, name, bound);
}

//  A summed model row made whole again: its ranked lists, rates and
//  quantiles from the sums, its buckets dropped.
static int
s_finish_model (cm_value_t *row)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof s_ranked / sizeof s_ranked[0] && rc == 0; i++) {
        cm_value_t *counts = cm_map_take (row, s_ranked[i].list);
        cm_value_t *list = s_rank (counts, s_ranked[i].field, s_ranked[i].top);
        cm_value_destroy (&counts);
        rc = list ? cm_map_set (row, s_ranked[i].list, list) : CM_ENOMEM;
    }
    int64_t answers = cm_map_int (row, "answers", 0);
    for (size_t i = 0; i < sizeof s_rates / sizeof s_rates[0] && rc == 0; i++)
        rc = answers > 0 ? cm_map_set_dbl (row, s_rates[i].rate,
                                           (double) cm_map_int (row, s_rates[i].counter, 0)
                                               / (double) answers)
                         : cm_map_set_nil (row, s_rates[i].rate);
    for (size_t i = 0; i < sizeof s_quantiles / sizeof s_quantiles[0] && rc == 0; i++)
        rc = s_quantile (row, s_quantiles[i].name, cm_map_get (row, s_quantiles[i].buckets),
                         s_quantiles[i].q);
    for (size_t i = 0; i < sizeof s_quantiles / sizeof s_quantiles[0]; i++) {
        cm_value_t *buckets = cm_map_take (row, s_quantiles[i].buckets);
        cm_value_destroy (&buckets);
    }
    return rc;
}

static int
s_by_name (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

//  {name: summed row} as the list of rows by name; models: whole model
//  rows (s_finish_model). NULL when out of memory.
static cm_value_t *
s_rows (const cm_value_t *sums, bool models)
{
    size_t n = cm_value_len (sums);
    const char **names = calloc (n ? n : 1, sizeof *names);
    cm_value_t *list = names ? cm_arr_new () : NULL;
    for (size_t i = 0; list && i < n; i++)
        names[i] = cm_map_key_at (sums, i);
    if (list)
        qsort (names, n, sizeof *names, s_by_name);
    for (size_t i = 0; list && i < n; i++) {
        cm_value_t *row = cm_value_dup (cm_map_get (sums, names[i]));
        if (!row || (models && s_finish_model (row)) || cm_arr_push (list, row)) {
            cm_value_destroy (&row);
            cm_value_destroy (&list);
        }
    }
    free (names);
    return list;
}

//  Adds the rows of list (each named by its label field) into sums.
static int
s_add_rows (cm_value_t *sums, const cm_value_t *list, const char *label)
{
    int rc = 0;
    for (size_t i = 0; i < cm_value_len (list) && rc == 0; i++) {
        const cm_value_t *row = cm_arr_at (list, i);
        const char *name = cm_map_str_or (row, label, "");
        cm_value_t *sum = cm_map_take (sums, name);
        if (!sum)
            sum = cm_map_new ();
        rc = sum ? s_add_row (sum, row) : CM_ENOMEM;
        rc = rc ? (cm_value_destroy (&sum), rc) : cm_map_set (sums, name, sum);
    }
    return rc;
}

cm_value_t *
gw_shards_admin_analytics (cm_value_t *const *replies, int count)
{
    cm_value_t *models = cm_map_new (), *users = cm_map_new (), *days = cm_map_new ();
    int rc = models && users && days ? 0 : CM_ENOMEM;
    for (int i = 0; i < count && rc == 0; i++) {
        rc = s_add_rows (models, cm_map_get (replies[i], "models"), "model");
        if (rc == 0)
            rc = s_add_rows (users, cm_map_get (replies[i], "users"), "user");
        const cm_value_t *list = cm_map_get (replies[i], "days");
        for (size_t j = 0; j < cm_value_len (list) && rc == 0; j++) {
            const cm_value_t *day = cm_arr_at (list, j);
            const char *date = cm_map_str_or (day, "date", "");
            cm_value_t *sums = cm_map_take (days, date);
            if (!sums)
                sums = cm_map_new ();
            rc = sums ? s_add_rows (sums, cm_map_get (day, "models"), "model") : CM_ENOMEM;
            rc = rc ? (cm_value_destroy (&sums), rc) : cm_map_set (days, date, sums);
        }
    }
    cm_value_t *out = rc == 0 && count > 0 ? cm_value_dup (replies[0]) : NULL;
    cm_value_t *model_rows = out ? s_rows (models, true) : NULL;
    cm_value_t *user_rows = out ? s_rows (users, false) : NULL;
    cm_value_t *day_rows = out ? cm_arr_new () : NULL;
    rc = model_rows && user_rows && day_rows ? 0 : CM_ENOMEM;
    if (rc == 0) {
        //  Dates are YYYY-MM-DD: their text order is their time order.
        size_t n = cm_value_len (days);
        const char **names = calloc (n ? n : 1, sizeof *names);
        rc = names ? 0 : CM_ENOMEM;
        for (size_t i = 0; i < n && rc == 0; i++)
            names[i] = cm_map_key_at (days, i);
        if (rc == 0)
            qsort (names, n, sizeof *names, s_by_name);
        for (size_t i = 0; i < n && rc == 0; i++) {
            cm_value_t *day = cm_map_new ();
            cm_value_t *rows = day ? s_rows (cm_map_get (days, names[i]), false) : NULL;
            rc = day && rows && cm_map_set_str (day, "date", names[i]) == 0
                         && cm_map_set (day, "models", rows) == 0
                     ? cm_arr_push (day_rows, day)
                     : CM_ENOMEM;
            if (rc)
                cm_value_destroy (&day);
        }
        free (names);
    }
    if (rc == 0) {
        cm_map_set (out, "models", model_rows);
        cm_map_set (out, "users", user_rows);
        cm_map_set (out, "days", day_rows);
    }
    else {
        cm_value_destroy (&model_rows);
        cm_value_destroy (&user_rows);
        cm_value_destroy (&day_rows);
        cm_value_destroy (&out);
    }
    cm_value_destroy (&models);
    cm_value_destroy (&users);
    cm_value_destroy (&days);
    return out;
}

//  ---------------------------------------------------------------------
//  analytics_totals and admin_audit_verify

cm_value_t *
gw_shards_admin_totals (cm_value_t *const *replies, int count)
{
    //  {model: {counter: count}}, added up.
    cm_value_t *sums = cm_map_new ();
    int rc = sums ? 0 : CM_ENOMEM;
    for (int i = 0; i < count && rc == 0; i++) {
        const cm_value_t *list = cm_map_get (replies[i], "totals");
        for (size_t j = 0; j < cm_value_len (list) && rc == 0; j++) {
            const cm_value_t *item = cm_arr_at (list, j);
            const char *model = cm_map_str_or (item, "model", "");
            cm_value_t *counters = cm_map_take (sums, model);
            if (!counters)
                counters = cm_map_new ();
            rc = counters ? s_add_int (counters, cm_map_str_or (item, "counter", ""),
                                       cm_map_int (item, "count", 0))
                          : CM_ENOMEM;
            rc = rc ? (cm_value_destroy (&counters), rc) : cm_map_set (sums, model, counters);
        }
    }
    cm_value_t *out = rc == 0 ? cm_map_new () : NULL, *totals = out ? cm_arr_new () : NULL;
    rc = totals ? 0 : CM_ENOMEM;
    for (size_t i = 0; i < cm_value_len (sums) && rc == 0; i++) {
        const cm_value_t *counters = cm_map_value_at (sums, i);
        for (size_t k = 0; k < cm_value_len (counters) && rc == 0; k++) {
            cm_value_t *item = cm_map_new ();
            rc = item && cm_map_set_str (item, "model", cm_map_key_at (sums, i)) == 0
                         && cm_map_set_str (item, "counter", cm_map_key_at (counters, k)) == 0
                         && cm_map_set_int (item, "count", cm_map_value_at (counters, k)->u.i) == 0
                     ? cm_arr_push (totals, item)
                     : CM_ENOMEM;
            if (rc)
                cm_value_destroy (&item);
        }
    }
    if (rc == 0)
        rc = cm_map_set (out, "totals", totals);
    else
        cm_value_destroy (&totals);
    if (rc)
        cm_value_destroy (&out);
    cm_value_destroy (&sums);
    return out;
}

cm_value_t *
gw_shards_admin_verify (cm_value_t *const *replies, int count)
{
    cm_value_t *out = count > 0 ? cm_value_dup (replies[0]) : NULL;
    bool sound = true;
    int64_t entries = 0, unchained = 0;
    const cm_value_t *broken = NULL;
    for (int i = 0; out && i < count; i++) {
        sound &= cm_map_bool (replies[i], "sound", false);
        entries += cm_map_int (replies[i], "entries", 0);
        unchained += cm_map_int (replies[i], "unchained", 0);
        const cm_value_t *here = cm_map_get (replies[i], "broken");
        if (!broken && here && here->type == CM_T_MAP)
            broken = here;
    }
    cm_value_t *first = broken ? cm_value_dup (broken) : cm_nil_new ();
    if (!out || !first || cm_map_set_bool (out, "sound", sound)
        || cm_map_set_int (out, "entries", entries) || cm_map_set_int (out, "unchained", unchained)
        || cm_map_set (out, "broken", first)) {
        cm_value_destroy (&out);
        return NULL;
    }
    return out;
}

//  ---------------------------------------------------------------------
//  The fan-out

int
gw_shards_admin_call (gw_shards_t *shards, cm_msg_t type, cm_value_t *payload,
                      cm_value_t **ok, cm_value_t **err)
{
    *ok = NULL;
    *err = NULL;
    if (!payload)
        return CM_ENOMEM;
    if (type == CM_MSG_ADMIN_AUDIT)
        cm_map_set_bool (payload, "shard_cursors", true);
    if (type == CM_MSG_ADMIN_ANALYTICS)
        cm_map_set_bool (payload, "shard_counts", true);
    int count = gw_shards_count (shards), rc = 0;
    cm_value_t *replies[CM_SHARDS_MAX] = {0};
    for (int i = 0; i < count && rc == 0; i++) {
        cm_value_t *copy = cm_value_dup (payload);
        rc = gw_shards_call_on (shards, i, type, copy, &replies[i], err);
    }
    if (rc == 0) {
        *ok = type == CM_MSG_ADMIN_AUDIT
                  ? gw_shards_admin_audit (replies, count, cm_map_int (payload, "limit", 100))
              : type == CM_MSG_ADMIN_ANALYTICS ? gw_shards_admin_analytics (replies, count)
              : type == CM_MSG_ANALYTICS_TOTALS ? gw_shards_admin_totals (replies, count)
                                                : gw_shards_admin_verify (replies, count);
        rc = *ok ? 0 : CM_ENOMEM;
    }
    for (int i = 0; i < count; i++)
        cm_value_destroy (&replies[i]);
    cm_value_destroy (&payload);
    return rc;
}
