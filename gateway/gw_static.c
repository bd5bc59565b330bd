/*  gw_static.c: which file a static request serves (gw_static.h).  */
#include "gw_static.h"

#include "cm_error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static bool
s_name_ok (const char *name, size_t len)
{
    if (len == 0 || len >= GW_WEB_LIB_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
              || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int
s_bad (gw_web_libs_t *out, char *why, size_t why_size, const char *entry, size_t len,
       const char *what)
{
    snprintf (why, why_size, "'%.*s': %s", (int) (len > 200 ? 200 : len), entry, what);
    out->count = 0;
    return CM_EINVAL;
}

int
gw_web_libs_parse (const char *spec, gw_web_libs_t *out, char *why, size_t why_size)
{
    memset (out, 0, sizeof *out);
    const char *p = spec ? spec : "";
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = strchr (p, ',');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        while (len && p[len - 1] == ' ')
            len--;
        const char *eq = memchr (p, '=', len);
        if (!eq)
            return s_bad (out, why, why_size, p, len, "not NAME=/path/to/file");
        size_t name_len = (size_t) (eq - p), path_len = len - name_len - 1;
        if (!s_name_ok (p, name_len))
            return s_bad (out, why, why_size, p, len,
                          "the name must be 1-63 of A-Z a-z 0-9 . _ - and not start with '.'");
        if (path_len == 0 || eq[1] != '/' || path_len >= GW_WEB_LIB_PATH_MAX)
            return s_bad (out, why, why_size, p, len, "the file must be an absolute path under 512 bytes");
        if (out->count == GW_WEB_LIBS_MAX)
            return s_bad (out, why, why_size, p, len, "more than 16 libraries");
        for (int i = 0; i < out->count; i++)
            if (strlen (out->libs[i].name) == name_len && !memcmp (out->libs[i].name, p, name_len))
                return s_bad (out, why, why_size, p, len, "that name is given twice");
        gw_web_lib_t *lib = &out->libs[out->count++];
        memcpy (lib->name, p, name_len);
        memcpy (lib->path, eq + 1, path_len);
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

bool
gw_static_path_ok (const char *uri)
{
    if (uri[0] != '/')
        return false;
    for (const char *p = uri; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == '\\' || *p == 0x7f)
            return false;
    for (const char *seg = uri; seg; seg = strchr (seg + 1, '/'))
        if (seg[1] == '.' || (seg[1] == '/' && seg != uri))
            return false;
    return true;
}

static int
s_regular (const char *path, char *real, int64_t *size)
{
    struct stat st;
    if (!realpath (path, real) || stat (real, &st) || !S_ISREG (st.st_mode) || st.st_size > GW_STATIC_MAX)
        return -1;
    *size = (int64_t) st.st_size;
    return 0;
}

int
gw_static_resolve (const char *web_dir, const gw_web_libs_t *libs, const char *uri, char *real,
                   int64_t *size)
{
    if (!gw_static_path_ok (uri) || strlen (uri) > 512)
        return -1;
    size_t prefix = strlen (GW_WEB_LIBS_PREFIX);
    if (libs && strncmp (uri, GW_WEB_LIBS_PREFIX, prefix) == 0) {
        for (int i = 0; i < libs->count; i++)
            if (strcmp (uri + prefix, libs->libs[i].name) == 0)
                return s_regular (libs->libs[i].path, real, size);
        return -1;
    }
    const char *file = strcmp (uri, "/") == 0 ? "/index.html" : uri;
    char root[PATH_MAX], path[PATH_MAX];
    if (!realpath (web_dir, root) || strlen (root) + strlen (file) + 1 > sizeof path)
        return -1;
    memcpy (path, root, strlen (root));
    memcpy (path + strlen (root), file, strlen (file) + 1);
    //  realpath resolves symlinks too: the file must stay under the root.
    size_t root_len = strlen (root);
    if (s_regular (path, real, size) || strncmp (real, root, root_len) != 0 || real[root_len] != '/')
        return -1;
    return 0;
}

const char *
gw_static_mime (const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr (path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp (dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}
