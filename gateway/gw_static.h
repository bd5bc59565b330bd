/*  gw_static.h: which file a static (non-API) request serves.

    Two sources: the frontend's files under CHATMESH_WEB_DIR (any path
    below it; symlinks must stay inside it), and the JavaScript libraries
    the frontend uses, which Debian packages install outside it
    (libjs-marked, node-dompurify, libjs-highlight.js): CHATMESH_WEB_LIBS
    maps names to files, `NAME=/absolute/file,...`, each served at
    /lib/NAME. Only the listed names are served, so a /lib/ path never
    reaches another file. No sockets here: text in, a file path out, so the
    rules are unit tested on their own (test_gw_static).                  */
#ifndef GW_STATIC_H_INCLUDED
#define GW_STATIC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_WEB_LIBS_MAX 16
#define GW_WEB_LIB_NAME_MAX 64
#define GW_WEB_LIB_PATH_MAX 512
//  Largest file served (the frontend's biggest, highlight.js, is ~0.9 MB).
#define GW_STATIC_MAX (16 * 1024 * 1024)
//  The path prefix of the libraries.
#define GW_WEB_LIBS_PREFIX "/lib/"
//  CHATMESH_WEB_LIBS's default: where Debian's packages put them.
#define GW_WEB_LIBS_DEFAULT                                                                        \
    "marked.js=/usr/share/javascript/marked/marked.min.js,"                                       \
    "purify.js=/usr/share/nodejs/dompurify/dist/purify.min.js,"                                   \
    "highlight.js=/usr/share/javascript/highlight.js/highlight.min.js"

typedef struct {
    char name[GW_WEB_LIB_NAME_MAX];  //  [A-Za-z0-9._-], not starting with '.'
    char path[GW_WEB_LIB_PATH_MAX];  //  absolute
} gw_web_lib_t;

typedef struct {
    int count;
    gw_web_lib_t libs[GW_WEB_LIBS_MAX];
} gw_web_libs_t;

//  Parses CHATMESH_WEB_LIBS ("" = none; spaces around entries allowed).
//  0, or CM_EINVAL with the offending entry and what is wrong in `why`
//  (then *out is empty). A name given twice is refused.
int gw_web_libs_parse (const char *spec, gw_web_libs_t *out, char *why, size_t why_size);

//  True when uri is a plain absolute file path: no "." or ".." (or any
//  hidden) segment, no empty segment, no backslash or control character.
bool gw_static_path_ok (const char *uri);

//  The regular file that uri names: "/" is index.html; GW_WEB_LIBS_PREFIX
//  NAME is that library's file; anything else is under web_dir. 0 with the
//  resolved path in real (PATH_MAX bytes) and its size, or -1 when there is
//  no such file to serve (a bad path, outside the root, not a regular file,
//  larger than GW_STATIC_MAX).
int gw_static_resolve (const char *web_dir, const gw_web_libs_t *libs, const char *uri, char *real,
                       int64_t *size);

//  The Content-Type of a served file, by its extension (case-insensitive);
//  application/octet-stream for any other.
const char *gw_static_mime (const char *path);

#endif
