/*  gw_head.c: the strict request-head check (gw_head.h).                */

#include "gw_head.h"
#include <string.h>
#include <strings.h>

static gw_head_state_t
s_reject (gw_head_t *head, int status, const char *code, const char *error)
{
    head->status = status;
    head->code = code;
    head->error = error;
    return GW_HEAD_REJECT;
}

static gw_head_state_t
s_bad (gw_head_t *head, const char *error)
{
    return s_reject (head, 400, "bad_request", error);
}

//  RFC 9110 5.6.2 tchar.
static bool
s_tchar (unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
        return true;
    return c && strchr ("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
s_token (const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_tchar ((unsigned char) p[i]))
            return false;
    return true;
}

static bool
s_named (const char *name, size_t len, const char *want)
{
    return strlen (want) == len && strncasecmp (name, want, len) == 0;
}

//  The request line (without its CRLF). 0 when good, *http10 set.
static gw_head_state_t
s_request_line (const char *line, size_t len, bool *http10, gw_head_t *head)
{
    const char *end = line + len;
    const char *sp1 = memchr (line, ' ', len);
    if (!sp1)
        return s_bad (head, "The request line must be: method, space, path, space, HTTP version.");
    const char *target = sp1 + 1;
    const char *sp2 = memchr (target, ' ', (size_t) (end - target));
    if (!sp2)
        return s_bad (head, "The request line must be: method, space, path, space, HTTP version.");
    const char *version = sp2 + 1;
    if (!s_token (line, (size_t) (sp1 - line)))
        return s_bad (head, "The request method must be a token.");
    size_t target_len = (size_t) (sp2 - target);
    if (target_len == 0)
        return s_bad (head, "The request line has two spaces where one belongs.");
    for (const char *p = target; p < sp2; p++)
        if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
            return s_bad (head, "The request target has a control character, a space or a non-ASCII byte.");
    size_t version_len = (size_t) (end - version);
    if (version_len != 8 || memcmp (version, "HTTP/", 5) != 0 || version[5] < '0' || version[5] > '9'
        || version[6] != '.' || version[7] < '0' || version[7] > '9')
        return s_bad (head, "The request line must end in an HTTP version such as HTTP/1.1.");
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return s_reject (head, 505, "http_version_not_supported",
                         "Only HTTP/1.1 and HTTP/1.0 are served.");
    *http10 = version[7] == '0';
    if (*target == '/')
        return GW_HEAD_INCOMPLETE;
    if (target_len == 1 && *target == '*') {
        if (s_named (line, (size_t) (sp1 - line), "OPTIONS"))
            return GW_HEAD_INCOMPLETE;
        return s_bad (head, "The request target '*' is for OPTIONS only.");
    }
    const char *colon = memchr (target, ':', target_len);
    if (colon && sp2 - colon >= 3 && colon[1] == '/' && colon[2] == '/')
        return s_bad (head, "Absolute-form request targets (scheme://host/path) are not served: "
                            "send the path alone, with the host in the Host header.");
    return s_bad (head, "The request target is not a path.");
}

//  A Content-Length value: 1-18 digits. -1 when it is not one.
static long long
s_content_length (const char *value, size_t len)
{
    if (len == 0 || len > 18)
        return -1;
    long long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        n = n * 10 + (value[i] - '0');
    }
    return n;
}

gw_head_state_t
gw_head_check (const char *data, size_t len, gw_head_t *head)
{
    memset (head, 0, sizeof *head);
    bool http10 = false;
    int hosts = 0, encodings = 0, fields = 0;
    long long length = -1;
    size_t pos = 0;
    for (int line_no = 0;; line_no++) {
        //  One line: up to CRLF. A CR must be followed by LF, an LF
        //  preceded by CR.
        size_t start = pos, eol = 0;
        bool found = false;
        for (; pos < len && pos < GW_HEAD_MAX; pos++) {
            if (data[pos] == '\n')
                return s_bad (head, "Lines must end in CRLF: a bare LF was sent.");
            if (data[pos] == '\r') {
                if (pos + 1 >= len)
                    break;
                if (data[pos + 1] != '\n')
                    return s_bad (head, "Lines must end in CRLF: a bare CR was sent.");
                eol = pos;
                pos += 2;
                found = true;
                break;
            }
        }
        if (!found) {
            if (len >= GW_HEAD_MAX)
                return s_reject (head, 431, "header_too_large",
                                 "The request head is larger than 16384 bytes.");
            return GW_HEAD_INCOMPLETE;
        }
        if (pos > GW_HEAD_MAX)
            return s_reject (head, 431, "header_too_large",
                             "The request head is larger than 16384 bytes.");
        const char *line = data + start;
        size_t line_len = eol - start;
        if (line_no == 0) {
            if (line_len == 0)
                return s_bad (head, "The request starts with an empty line.");
            gw_head_state_t state = s_request_line (line, line_len, &http10, head);
            if (state != GW_HEAD_INCOMPLETE)
                return state;
            continue;
        }
        if (line_len == 0)
            break; //  the end of the head
        if (++fields > GW_HEAD_FIELDS_MAX)
            return s_reject (head, 431, "header_too_large", "The request has more than 64 header fields.");
        if (*line == ' ' || *line == '\t')
            return s_bad (head, "A header line starts with whitespace (obs-fold is not accepted).");
        const char *colon = memchr (line, ':', line_len);
        if (!colon)
            return s_bad (head, "A header line has no colon.");
        size_t name_len = (size_t) (colon - line);
        if (name_len && (colon[-1] == ' ' || colon[-1] == '\t'))
            return s_bad (head, "A header name is followed by whitespace before its colon.");
        if (!s_token (line, name_len))
            return s_bad (head, "A header name is empty or not a token.");
        const char *value = colon + 1, *end = line + line_len;
        for (const char *p = value; p < end; p++)
            if (((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f)
                return s_bad (head, "A header value has a control character.");
        while (value < end && (*value == ' ' || *value == '\t'))
            value++;
        while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t value_len = (size_t) (end - value);
        if (s_named (line, name_len, "Host")) {
            if (++hosts > 1)
                return s_bad (head, "The request has more than one Host header.");
        }
        else if (s_named (line, name_len, "Content-Length")) {
            long long n = s_content_length (value, value_len);
            if (n < 0)
                return s_bad (head, "Content-Length must be 1-18 decimal digits.");
            if (length >= 0 && n != length)
                return s_bad (head, "The request has two different Content-Length headers.");
            length = n;
        }
        else if (s_named (line, name_len, "Transfer-Encoding")) {
            if (++encodings > 1)
                return s_bad (head, "The request has more than one Transfer-Encoding header.");
            if (!s_named (value, value_len, "chunked"))
                return s_reject (head, 501, "not_implemented",
                                 "The only transfer coding served is 'chunked', alone.");
        }
        if (encodings && length >= 0)
            return s_bad (head, "The request has both Content-Length and Transfer-Encoding.");
        if (encodings && http10)
            return s_bad (head, "Transfer-Encoding is not allowed in an HTTP/1.0 request.");
    }
    if (!http10 && hosts != 1)
        return s_bad (head, "An HTTP/1.1 request needs exactly one Host header.");
    head->head_len = pos;
    head->chunked = encodings == 1;
    return GW_HEAD_COMPLETE;
}
