/*  fuzz_proto: the envelope and value decoders take any bytes.
    A decoded envelope must re-encode, and decode again to the same thing.  */
#include "cm_codec.h"
#include "cm_error.h"

#include <stdint.h>
#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cm_envelope_t *envelope = NULL;
    if (cm_envelope_decode (data, size, &envelope) == 0) {
        char *bytes;
        size_t len;
        if (cm_envelope_encode (envelope, &bytes, &len) != 0)
            abort ();
        cm_envelope_t *again = NULL;
        if (cm_envelope_decode (bytes, len, &again) != 0
            || !cm_value_equal (again->payload, envelope->payload) || again->type != envelope->type)
            abort ();
        cm_envelope_destroy (&again);
        free (bytes);
        cm_envelope_destroy (&envelope);
    }
    cm_value_t *value = NULL;
    if (cm_value_decode (data, size, &value) == 0)
        cm_value_destroy (&value);
    return 0;
}
