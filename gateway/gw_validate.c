#include "gw_validate.h"

#include "cm_error.h"
#include "gw_errors.h"
#include "gw_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int
s_reject (gw_verdict_t *verdict, gw_http_error_t code, const char *format, ...)
{
    verdict->status = gw_http_error_info (code)->status;
    verdict->code = gw_http_error_info (code)->code;
    va_list args;
    va_start (args, format);
    vsnprintf (verdict->error, sizeof verdict->error, format, args);
    va_end (args);
    return CM_EINVAL;
}

bool
gw_content_type_is_json (const char *content_type)
{
    if (!content_type)
        return false;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t len = strcspn (content_type, "; \t");
    return len == 16 && strncasecmp (content_type, "application/json", 16) == 0;
}

long
gw_utf8_chars (const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s;
    long chars = 0;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t need;
        unsigned cp;
        if (c < 0x80) {
            i++;
            chars++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        }
        else
            return -1;
        if (i + need >= len)
            return -1;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += need + 1;
        chars++;
    }
    return chars;
}

int
gw_body_parse (const char *body, size_t len, json_t **out, gw_verdict_t *verdict)
{
    if (gw_json_text_depth (body, len, GW_BODY_MAX_DEPTH) > GW_BODY_MAX_DEPTH)
        return s_reject (verdict, GW_E_INVALID_JSON,
                         "The request body is nested more than %d levels deep.",
                         GW_BODY_MAX_DEPTH);
    json_error_t error;
    json_t *json = json_loadb (body, len, JSON_REJECT_DUPLICATES, &error);
    //  JSON sets no range on integers; jansson's is 64 bits. A larger one is
    //  read as a floating point number rather than refused.
    if (!json && json_error_code (&error) == json_error_numeric_overflow)
        json = json_loadb (body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &error);
    if (!json) {
        enum json_error_code code = json_error_code (&error);
        const char *what = code == json_error_duplicate_key     ? "repeats a name in an object"
                           : code == json_error_null_character  ? "holds the character U+0000"
                           : code == json_error_null_byte_in_key ? "holds the character U+0000"
                           : code == json_error_numeric_overflow ? "holds a number out of range"
                                                                 : "is not valid JSON";
        return s_reject (verdict, GW_E_INVALID_JSON,
                         "The request body %s (line %d, column %d).", what, error.line,
                         error.column);
    }
    if (!json_is_object (json)) {
        json_decref (json);
        return s_reject (verdict, GW_E_INVALID_BODY, "The request body must be a JSON object.");
    }
    *out = json;
    return 0;
}

static bool
s_space (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

//  Required or optional trimmed text of 1..max_chars characters, added to
//  payload under the same name.
static int
s_text (const json_t *body, const char *field, bool required, int max_chars, cm_value_t *payload,
        gw_verdict_t *verdict)
{
    json_t *value = json_object_get (body, field);
    if (!value || json_is_null (value)) {
        if (required)
            return s_reject (verdict, GW_E_MISSING_FIELD, "The field '%s' is required.", field);
        return 0;
    }
    if (!json_is_string (value))
        return s_reject (verdict, GW_E_INVALID_FIELD, "The field '%s' must be a string.", field);
    const char *text = json_string_value (value);
    size_t len = json_string_length (value);
    while (len > 0 && s_space (text[0])) {
        text++;
        len--;
    }
    while (len > 0 && s_space (text[len - 1]))
        len--;
    long chars = gw_utf8_chars (text, len);
    if (chars < 0)
        return s_reject (verdict, GW_E_INVALID_UTF8, "The field '%s' is not valid UTF-8.",
                         field);
    if (chars == 0 && required)
        return s_reject (verdict, GW_E_EMPTY_FIELD, "The field '%s' must not be empty.", field);
    if (chars > max_chars)
        return s_reject (verdict, GW_E_FIELD_TOO_LONG,
                         "The field '%s' is %ld characters long; the limit is %d.", field, chars,
                         max_chars);
    if (chars == 0)
        return 0; //  optional and blank: as if absent
    return cm_map_set_strn (payload, field, text, len) ? s_reject (verdict, GW_E_INTERNAL_ERROR,
                                                                   "Out of memory.")
                                                       : 0;
}

static int
s_model_temperature (const json_t *body, cm_value_t *payload, gw_verdict_t *verdict)
{
    json_t *model = json_object_get (body, "model");
    if (model && !json_is_null (model)) {
        if (!json_is_string (model))
            return s_reject (verdict, GW_E_INVALID_FIELD, "The field 'model' must be a string.");
        size_t len = json_string_length (model);
        long chars = gw_utf8_chars (json_string_value (model), len);
        if (chars < 1 || chars > GW_MODEL_MAX_CHARS)
            return s_reject (verdict, GW_E_INVALID_FIELD,
                             "The field 'model' must be 1-%d characters long.",
                             GW_MODEL_MAX_CHARS);
        cm_map_set_strn (payload, "model", json_string_value (model), len);
    }
    json_t *temperature = json_object_get (body, "temperature");
    if (temperature && !json_is_null (temperature)) {
        if (!json_is_number (temperature))
            return s_reject (verdict, GW_E_INVALID_FIELD,
                             "The field 'temperature' must be a number.");
        double t = json_number_value (temperature);
        if (!(t >= 0.0 && t <= 2.0))
            return s_reject (verdict, GW_E_FIELD_OUT_OF_RANGE,
                             "The field 'temperature' must be between 0.0 and 2.0.");
        cm_map_set_dbl (payload, "temperature", t);
    }
    return 0;
}

int
gw_validate_run_sse (const json_t *body, int max_chars, cm_value_t *payload,
                     gw_verdict_t *verdict)
{
    int rc = s_text (body, "query", true, max_chars, payload, verdict);
    return rc ? rc : s_model_temperature (body, payload, verdict);
}

int
gw_validate_regenerate (const json_t *body, int max_chars, cm_value_t *payload,
                        gw_verdict_t *verdict)
{
    if (!body)
        return 0;
    int rc = s_text (body, "context", false, max_chars, payload, verdict);
    //  How the new answer should differ ("shorter", "more detail", ...).
    rc = rc ? rc : s_text (body, "instruction", false, max_chars, payload, verdict);
    return rc ? rc : s_model_temperature (body, payload, verdict);
}

int
gw_validate_edit (const json_t *body, int max_chars, cm_value_t *payload, gw_verdict_t *verdict)
{
    int rc = s_text (body, "content", true, max_chars, payload, verdict);
    if (rc)
        return rc;
    json_t *trigger = json_object_get (body, "trigger_regeneration");
    bool value = true;
    if (trigger && !json_is_null (trigger)) {
        if (!json_is_boolean (trigger))
            return s_reject (verdict, GW_E_INVALID_FIELD,
                             "The field 'trigger_regeneration' must be true or false.");
        value = json_is_true (trigger);
    }
    cm_map_set_bool (payload, "trigger_regeneration", value);
    return 0;
}

//  The wire protocol carries map keys of 1..CM_MAP_KEY_MAX bytes only: any other key
//  would make the store reject the whole request.
static bool
s_keys_ok (const json_t *json)
{
    const char *key;
    json_t *item;
    size_t index;
    if (json_is_object (json)) {
        json_object_foreach ((json_t *) json, key, item)
            if (!*key || strlen (key) > GW_METADATA_KEY_MAX || !s_keys_ok (item))
                return false;
    } else if (json_is_array (json)) {
        json_array_foreach (json, index, item)
            if (!s_keys_ok (item))
                return false;
    }
    return true;
}

int
gw_validate_feedback (const json_t *body, int max_chars, cm_value_t *payload, gw_verdict_t *verdict)
{
    (void) max_chars; //  reason has its own limit
    json_t *type = json_object_get (body, "feedback_type");
    if (!type || json_is_null (type))
        return s_reject (verdict, GW_E_MISSING_FIELD, "The field 'feedback_type' is required.");
    const char *text = json_string_value (type);
    if (!text || (strcmp (text, "upvote") != 0 && strcmp (text, "downvote") != 0))
        return s_reject (verdict, GW_E_INVALID_FIELD,
                         "The field 'feedback_type' must be \"upvote\" or \"downvote\".");
    cm_map_set_str (payload, "feedback_type", text);
    int rc = s_text (body, "reason", false, GW_REASON_MAX_CHARS, payload, verdict);
    if (rc)
        return rc;
    json_t *metadata = json_object_get (body, "metadata");
    if (metadata && !json_is_null (metadata)) {
        if (!json_is_object (metadata))
            return s_reject (verdict, GW_E_INVALID_FIELD,
                             "The field 'metadata' must be a JSON object.");
        if (gw_json_depth (metadata) > GW_METADATA_MAX_DEPTH)
            return s_reject (verdict, GW_E_INVALID_FIELD,
                             "The field 'metadata' is nested more than %d levels deep.",
                             GW_METADATA_MAX_DEPTH);
        if (!s_keys_ok (metadata))
            return s_reject (verdict, GW_E_INVALID_FIELD,
                             "Keys in 'metadata' must be 1 to %d bytes long.", GW_METADATA_KEY_MAX);
        cm_value_t *value = gw_json_to_value (metadata, GW_METADATA_MAX_DEPTH);
        if (!value || cm_map_set (payload, "metadata", value))
            return s_reject (verdict, GW_E_INTERNAL_ERROR, "Out of memory.");
    }
    json_t *version = json_object_get (body, "version");
    if (version && !json_is_null (version)) {
        //  A whole number written as 2.0 is the integer 2 (as JSON Schema
        //  reads "integer"), and so is every integer of a body that also
        //  holds one beyond 64 bits: gw_body_parse then reads them all as
        //  reals.
        bool whole = json_is_integer (version);
        json_int_t n = whole ? json_integer_value (version) : 0;
        if (json_is_real (version)) {
            double real = json_real_value (version);
            //  Beyond 2^53 every double is whole; below, the cast tells.
            whole = real < -1e18 || real > 1e18 || real == (double) (long long) real;
            n = real < 1 || real > CM_VERSIONS_MAX ? 0 : (json_int_t) real;
        }
        if (!whole)
            return s_reject (verdict, GW_E_INVALID_FIELD,
                             "The field 'version' must be an integer.");
        if (n < 1 || n > CM_VERSIONS_MAX)
            return s_reject (verdict, GW_E_FIELD_OUT_OF_RANGE,
                             "The field 'version' must be between 1 and %d.", CM_VERSIONS_MAX);
        cm_map_set_int (payload, "version", (int64_t) n);
    }
    return 0;
}

int
gw_validate_rename (const json_t *body, int max_chars, cm_value_t *payload,
                    gw_verdict_t *verdict)
{
    (void) max_chars; //  a title has its own limit
    json_t *title = json_object_get (body, "title");
    if (!title || json_is_null (title))
        return s_reject (verdict, GW_E_MISSING_FIELD, "The field 'title' is required.");
    if (!json_is_string (title))
        return s_reject (verdict, GW_E_INVALID_FIELD, "The field 'title' must be a string.");
    const char *text = json_string_value (title);
    size_t len = json_string_length (title);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f)
            return s_reject (verdict, GW_E_INVALID_FIELD,
                             "The field 'title' must not hold control characters.");
    while (len && text[0] == ' ')
        text++, len--;
    while (len && text[len - 1] == ' ')
        len--;
    if (!len)
        return s_reject (verdict, GW_E_EMPTY_FIELD, "The field 'title' must not be empty.");
    if (gw_utf8_chars (text, len) > GW_TITLE_MAX_CHARS)
        return s_reject (verdict, GW_E_FIELD_TOO_LONG,
                         "The field 'title' must be at most %d characters.", GW_TITLE_MAX_CHARS);
    char *copy = strndup (text, len);
    if (!copy)
        return s_reject (verdict, GW_E_INTERNAL_ERROR, "Out of memory; retry.");
    cm_map_set_str (payload, "title", copy);
    free (copy);
    return 0;
}
