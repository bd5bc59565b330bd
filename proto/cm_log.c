#include "cm_log.h"

#include <czmq.h>
#include <stdarg.h>
#include <string.h>

//  The level is read by every thread and written once at start-up.
static volatile cm_log_level_t s_level = CM_LOG_NOTICE;

void
cm_log_init (const char *ident, cm_log_level_t level)
{
    zsys_set_logident (ident);
    zsys_set_logstream (stderr);
    s_level = level;
}

cm_log_level_t cm_log_level (void) { return s_level; }

int
cm_log_level_parse (const char *text)
{
    static const char *names[] = {"error", "warning", "notice", "info", "debug"};
    for (int i = 0; text && i < 5; i++)
        if (strcmp (text, names[i]) == 0)
            return i;
    return -1;
}

void
cm_log_write (cm_log_level_t level, const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    switch (level) {
        case CM_LOG_ERROR:
            zsys_error ("%s", line);
            break;
        case CM_LOG_WARNING:
            zsys_warning ("%s", line);
            break;
        case CM_LOG_NOTICE:
            zsys_notice ("%s", line);
            break;
        case CM_LOG_INFO:
            zsys_info ("%s", line);
            break;
        case CM_LOG_DEBUG:
            zsys_debug ("%s", line);
            break;
    }
}
