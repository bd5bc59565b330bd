"""schemathesis hooks for tests/schema/run (loaded through SCHEMATHESIS_HOOKS).

Two limits of the gateway that OpenAPI 3.0 cannot state, so generated
requests outside them are left out (and nothing else is):

- civetweb 1.15 refuses a header value holding a horizontal tab (its head
  parser takes any non-printable byte for a malformed message) although
  RFC 9110 5.5 allows HTAB inside a field value. The gateway answers that
  refusal with a JSON 400; schemathesis would count a valid request refused.
- Feedback `metadata` keys, at every depth, are 1..256 bytes (the wire
  protocol's map keys; 422 otherwise). OpenAPI 3.0 has no propertyNames.
- The audit filters' limits are bytes (proto/cm_msg.h); maxLength counts
  characters.
- An admin time range has `from` <= `to`, and the analytics one spans at
  most 366 days: rules over two parameters (a bound left out is chosen so
  that the range fits).

One limit of schemathesis itself: its stateful phase infers links from
the response schemas (a body's `message_id` feeds `{message_id}`) and
puts the value it found into the path without checking it against the
parameter's schema: a null from a nullable field (an audit entry's
`message_id`, sent as "None"), or a question's id where regenerate and
continue take an answer's (their pattern ends in `_assistant`). Such a
request is not schema-valid, yet schemathesis counts the gateway's 400
(invalid_message_id, not_assistant_message) as a valid request refused
(ST202). Only that failure of such a request is dropped (filter_failure,
counted in the summary); every other check of it stands.

And one rule that is about pairs of requests, not one: an Idempotency-Key
sent again with another request is 422 idempotency_key_reused, by design
(docs/api.md). schemathesis draws keys from a small space and would send
one key with many bodies, so every generated key is made unique here;
replays of a key are svc_idem's and test_gw_idem's to test.
"""
import itertools
import re

import schemathesis

KEY_MAX = 256


_key_numbers = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    # Every phase calls this before it sends (map_headers is not applied to
    # the coverage phase's cases). Only a valid key (1..255 visible ASCII)
    # is made unique, and it stays valid: a negative case keeps the invalid
    # key it was generated with.
    # Negative cases are left alone: an edited case is revalidated, and a
    # negative one (say, Authorization left out) could turn positive and be
    # sent with the header it was meant to lack.
    meta = getattr(case, 'meta', None)
    if meta is not None and meta.generation.mode.is_negative:
        return
    key = case.headers.get('Idempotency-Key') if case.headers else None
    if isinstance(key, str) and re.fullmatch(r'[!-~]{1,255}', key):
        case.headers['Idempotency-Key'] = '%s.%d' % (key[:200], next(_key_numbers))


@schemathesis.hook
def filter_headers(context, headers):
    return not headers or not any('\t' in str(value) for value in headers.values())


def _keys_ok(value):
    if isinstance(value, dict):
        return all(0 < len(key.encode('utf-8', 'surrogatepass')) <= KEY_MAX and _keys_ok(item)
                   for key, item in value.items())
    if isinstance(value, list):
        return all(_keys_ok(item) for item in value)
    return True


AUDIT_TEXT_BYTES = {'user': 128, 'session': 128, 'action': 64, 'cursor': 512}
DAY_MS = 86400000


def _path(context):
    return getattr(getattr(context, 'operation', None), 'path', '')


@schemathesis.hook
def filter_query(context, query):
    if not query:
        return True
    path = _path(context)
    if path == '/api/admin/audit' and not all(
            len(str(query[name]).encode('utf-8', 'surrogatepass')) <= limit
            for name, limit in AUDIT_TEXT_BYTES.items() if name in query):
        return False
    if path.startswith('/api/admin/') and 'from' in query and 'to' in query:
        try:
            start, to = int(query['from']), int(query['to'])
        except (TypeError, ValueError):
            return True  # not a number: the document refuses it, a negative case
        if start > to:
            return False
        return path != '/api/admin/analytics' or to // DAY_MS < start // DAY_MS + 366
    return True


@schemathesis.hook
def filter_body(context, body):
    if isinstance(body, dict) and 'metadata' in body:
        return _keys_ok(body['metadata'])
    return True


def _path_fits(case):
    """True when every path parameter of case fits its schema in the document."""
    values = case.path_parameters or {}
    for parameter in case.operation.path_parameters:
        value = values.get(parameter.name)
        schema = parameter.definition.get('schema', {})
        if schema.get('type') == 'integer':
            if not isinstance(value, int) or isinstance(value, bool) or not (
                    schema.get('minimum', value) <= value <= schema.get('maximum', value)):
                return False
        elif not isinstance(value, str) or len(value) > schema.get('maxLength', len(value)) or (
                'pattern' in schema and not re.search(schema['pattern'], value)):
            return False
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response):
    return getattr(failure, 'code', None) != 'ST202' or _path_fits(case)
