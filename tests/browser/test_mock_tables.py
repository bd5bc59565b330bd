#!/usr/bin/env python3
"""test_mock_tables.py DOC.json: the mock gateway (mock_gateway.py) speaks
the gateway's tables, as the build's generated OpenAPI document has them:
each error code it answers with is a code of GW_HTTP_ERRORS with the same
status, and its session id pattern is the document's."""
import importlib.util
import json
import os
import sys


def main():
    with open(sys.argv[1], encoding='utf-8') as f:
        doc = json.load(f)
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location('mock_gateway', os.path.join(here, 'mock_gateway.py'))
    mock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mock)

    statuses = {}  # code -> statuses the document gives it
    patterns = {}
    for item in doc['paths'].values():
        for op in item.values():
            for status, response in op['responses'].items():
                content = response.get('content', {})
                schema = content.get('application/json', {}).get('schema', {})
                for code in schema.get('properties', {}).get('code', {}).get('enum', []):
                    statuses.setdefault(code, set()).add(int(status))
            for param in op.get('parameters', []):
                if 'pattern' in param.get('schema', {}):
                    patterns[param['name']] = param['schema']['pattern']
    problems = []
    for code, status in mock.ERRORS.items():
        if statuses.get(code) != {status}:
            problems.append(f'mock answers {code} with {status}; the gateway: {sorted(statuses.get(code, []))}')
    if mock.SESSION_RE.pattern != patterns['session_id']:
        problems.append(f'mock session id {mock.SESSION_RE.pattern} != {patterns["session_id"]}')
    for p in problems:
        print(p)
    print(f'{len(mock.ERRORS)} error codes and the session id pattern checked')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
