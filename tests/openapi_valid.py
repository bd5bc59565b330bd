#!/usr/bin/env python3
"""openapi_valid.py DOC.json: the generated OpenAPI document is a valid
OpenAPI 3 document (openapi-spec-validator). Exit 77 (ctest: skipped) when
the validator is not installed."""
import json
import sys

try:
    from openapi_spec_validator import validate
except ImportError:
    print("openapi-spec-validator is not installed (pip install openapi-spec-validator): skipped")
    sys.exit(77)

with open(sys.argv[1], encoding="utf-8") as f:
    document = json.load(f)
validate(document)
print(f"{sys.argv[1]}: valid OpenAPI {document['openapi']}, {len(document['paths'])} paths")
