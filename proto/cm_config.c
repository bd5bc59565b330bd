#include "cm_config.h"
#include "cm_error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    int64_t i;
    double d;
    bool b;
    char *s;
} s_value_t;

struct cm_config {
    const cm_cfg_spec_t *specs;
    size_t count;
    s_value_t *values;
};

int
cm_parse_bool (const char *text, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp (text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp (text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return CM_EINVAL;
}

//  Parses `text` for one setting into `value`; 0 or CM_EINVAL with why.
static int
s_parse (const cm_cfg_spec_t *spec, const char *text, const char *origin, s_value_t *value,
         char *why, size_t why_size)
{
    char *end = NULL;
    errno = 0;
    switch (spec->type) {
        case CM_CFG_INT: {
            long long parsed = strtoll (text, &end, 10);
            if (errno || end == text || *end || parsed < spec->min || parsed > spec->max) {
                snprintf (why, why_size, "%s (%s): '%s' is not an integer in %.0f..%.0f",
                          spec->env, origin, text, spec->min, spec->max);
                return CM_EINVAL;
            }
            value->i = parsed;
            return 0;
        }
        case CM_CFG_DBL: {
            double parsed = strtod (text, &end);
            if (errno || end == text || *end || !isfinite (parsed) || parsed < spec->min
                || parsed > spec->max) {
                snprintf (why, why_size, "%s (%s): '%s' is not a number in %g..%g", spec->env,
                          origin, text, spec->min, spec->max);
                return CM_EINVAL;
            }
            value->d = parsed;
            return 0;
        }
        case CM_CFG_BOOL:
            if (cm_parse_bool (text, &value->b)) {
                snprintf (why, why_size, "%s (%s): '%s' is not true/false", spec->env, origin,
                          text);
                return CM_EINVAL;
            }
            return 0;
        case CM_CFG_STR: {
            size_t len = strlen (text);
            if (len < spec->min || len > spec->max) {
                snprintf (why, why_size, "%s (%s): length %zu is not in %.0f..%.0f", spec->env,
                          origin, len, spec->min, spec->max);
                return CM_EINVAL;
            }
            char *copy = strdup (text);
            if (!copy)
                return CM_ENOMEM;
            free (value->s);
            value->s = copy;
            return 0;
        }
    }
    return CM_EINVAL;
}

//  The accepted values, as --help and the README show them.
static void
s_format_range (const cm_cfg_spec_t *spec, char *out, size_t size)
{
    switch (spec->type) {
        case CM_CFG_INT:
            snprintf (out, size, "%.0f..%.0f", spec->min, spec->max);
            break;
        case CM_CFG_DBL:
            snprintf (out, size, "%g..%g", spec->min, spec->max);
            break;
        case CM_CFG_BOOL:
            snprintf (out, size, "true/false");
            break;
        case CM_CFG_STR:
            snprintf (out, size, "%.0f..%.0f characters", spec->min, spec->max);
            break;
    }
}

static void
s_print_help (const cm_cfg_spec_t *specs, size_t count, const char *program,
              const char *summary)
{
    printf ("Usage: %s [--FLAG VALUE]...\n%s\n\n", program, summary);
    printf ("Each flag mirrors an environment variable; flags win.\n\n");
    for (size_t i = 0; i < count; i++) {
        char range[64];
        s_format_range (&specs[i], range, sizeof range);
        printf ("  %-28s %-36s default: %s\n      %s\n      range: %s\n", specs[i].flag,
                specs[i].env, specs[i].dflt[0] ? specs[i].dflt : "(empty)", specs[i].help,
                range);
    }
    printf ("  %-28s %-36s\n      %s\n", "--help", "", "print this help and exit");
}

void
cm_config_destroy (cm_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cm_config_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free (self->values[i].s);
    free (self->values);
    free (self);
    *self_p = NULL;
}

//  Defaults, then (when with_environment) the environment, then flags.
static int
s_load (const cm_cfg_spec_t *specs, size_t count, bool with_environment, int argc, char **argv,
        cm_config_t **out, char *why, size_t why_size)
{
    cm_config_t *self = calloc (1, sizeof *self);
    if (!self || !(self->values = calloc (count, sizeof (s_value_t)))) {
        free (self);
        snprintf (why, why_size, "out of memory");
        return CM_ENOMEM;
    }
    self->specs = specs;
    self->count = count;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        rc = s_parse (&specs[i], specs[i].dflt, "default", &self->values[i], why, why_size);
        const char *env = with_environment ? getenv (specs[i].env) : NULL;
        if (rc == 0 && env)
            rc = s_parse (&specs[i], env, "environment", &self->values[i], why, why_size);
    }
    for (int arg = 1; rc == 0 && arg < argc; arg++) {
        const char *name = argv[arg];
        const char *eq = strchr (name, '=');
        size_t name_len = eq ? (size_t) (eq - name) : strlen (name);
        size_t i;
        for (i = 0; i < count; i++)
            if (strlen (specs[i].flag) == name_len && strncmp (specs[i].flag, name, name_len) == 0)
                break;
        if (i == count) {
            snprintf (why, why_size, "unknown option '%.*s' (try --help)", (int) name_len, name);
            rc = CM_EINVAL;
            break;
        }
        const char *text = eq ? eq + 1 : (arg + 1 < argc ? argv[++arg] : NULL);
        if (!text) {
            snprintf (why, why_size, "%s needs a value", specs[i].flag);
            rc = CM_EINVAL;
            break;
        }
        rc = s_parse (&specs[i], text, specs[i].flag, &self->values[i], why, why_size);
    }
    if (rc) {
        cm_config_destroy (&self);
        return rc;
    }
    *out = self;
    return 0;
}

int
cm_config_load (const cm_cfg_spec_t *specs, size_t count, int argc, char **argv,
                const char *program, const char *summary, cm_config_t **out, char *why,
                size_t why_size)
{
    for (int arg = 1; arg < argc; arg++)
        if (strcmp (argv[arg], "--help") == 0 || strcmp (argv[arg], "-h") == 0) {
            s_print_help (specs, count, program, summary);
            return CM_CONFIG_HELP;
        }
    return s_load (specs, count, true, argc, argv, out, why, why_size);
}

int
cm_config_defaults (const cm_cfg_spec_t *specs, size_t count, cm_config_t **out, char *why,
                    size_t why_size)
{
    return s_load (specs, count, false, 0, NULL, out, why, why_size);
}

static const s_value_t *
s_lookup (const cm_config_t *self, const char *env, cm_cfg_type_t type)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->specs[i].env, env) == 0 && self->specs[i].type == type)
            return &self->values[i];
    fprintf (stderr, "cm_config: no setting %s of that type\n", env);
    abort ();
}

int64_t cm_config_int (const cm_config_t *self, const char *env)
{
    return s_lookup (self, env, CM_CFG_INT)->i;
}
double cm_config_dbl (const cm_config_t *self, const char *env)
{
    return s_lookup (self, env, CM_CFG_DBL)->d;
}
bool cm_config_bool (const cm_config_t *self, const char *env)
{
    return s_lookup (self, env, CM_CFG_BOOL)->b;
}
const char *cm_config_str (const cm_config_t *self, const char *env)
{
    return s_lookup (self, env, CM_CFG_STR)->s;
}
