/*  cm_log.h: leveled logging to stderr through czmq's zsys.

    One ident per service (cm_log_init). Formatting is skipped below the
    level, as Redis' serverLog does. Never log tokens or message bodies.  */
#ifndef CM_LOG_H_INCLUDED
#define CM_LOG_H_INCLUDED

typedef enum { CM_LOG_ERROR, CM_LOG_WARNING, CM_LOG_NOTICE, CM_LOG_INFO, CM_LOG_DEBUG } cm_log_level_t;

//  Sets the ident (e.g. "chatmesh-store") and the level. Not thread-safe:
//  call once from main before starting threads.
void cm_log_init (const char *ident, cm_log_level_t level);
//  Parses "error|warning|notice|info|debug"; -1 when unknown.
int cm_log_level_parse (const char *text);
cm_log_level_t cm_log_level (void);

void cm_log_write (cm_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

#define cm_log(level, ...)                                                   \
    do {                                                                     \
        if ((level) <= cm_log_level ())                                      \
            cm_log_write ((level), __VA_ARGS__);                             \
    } while (0)
#define cm_error(...) cm_log (CM_LOG_ERROR, __VA_ARGS__)
#define cm_warning(...) cm_log (CM_LOG_WARNING, __VA_ARGS__)
#define cm_notice(...) cm_log (CM_LOG_NOTICE, __VA_ARGS__)
#define cm_info(...) cm_log (CM_LOG_INFO, __VA_ARGS__)
#define cm_debug(...) cm_log (CM_LOG_DEBUG, __VA_ARGS__)

#endif
