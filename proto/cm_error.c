#include "cm_error.h"

const char *
cm_strerror (int code)
{
    switch (code) {
        case 0:
            return "success";
#define X(name, value, text)                                                 \
    case value:                                                              \
        return text;
            CM_ERRORS (X)
#undef X
    }
    return "unknown error";
}

const char *
cm_error_name (int code)
{
    switch (code) {
        case 0:
            return "OK";
#define X(name, value, text)                                                 \
    case value:                                                              \
        return #name;
            CM_ERRORS (X)
#undef X
    }
    return "EUNKNOWN";
}
