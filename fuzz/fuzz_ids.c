/*  fuzz_ids: message-id and Last-Event-ID parsing take any text.
    A parsed message id must format back to the same text.  */
#include "cm_error.h"
#include "cm_ids.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    memcpy (text, data, size);
    text[size] = 0;
    cm_msgid_t id;
    if (cm_msgid_parse (text, &id) == 0) {
        char again[CM_MESSAGE_ID_MAX + 1];
        if (cm_msgid_format (again, sizeof again, id.uuid, id.session_id, id.role)
            || strcmp (again, text) != 0)
            abort ();
    }
    cm_event_id_t event_id;
    if (cm_event_id_parse (text, &event_id) == 0) {
        char again[48];
        cm_event_id_format (again, sizeof again, event_id);
        cm_event_id_t round;
        if (cm_event_id_parse (again, &round) || round.epoch != event_id.epoch
            || round.seq != event_id.seq)
            abort ();
    }
    (void) cm_session_id_valid (text);
    free (text);
    return 0;
}
