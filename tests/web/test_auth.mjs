// web/js/auth.js under node: the local token checks say what is wrong.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkToken, decodeJwt } from '../../web/js/auth.js';

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
const token = (claims) => `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}.c2ln`;
const NOW = Date.UTC(2026, 11, 2, 10, 0, 0);

test('a good token gives its user, pasted with or without Bearer', () => {
  const raw = token({ sub: 'zoë', exp: NOW / 1000 + 60 });
  assert.deepEqual(checkToken(raw, NOW), { token: raw, user: 'zoë' });
  assert.deepEqual(checkToken(`  Bearer ${raw}\n`, NOW), { token: raw, user: 'zoë' });
  assert.equal(checkToken(token({ exp: NOW / 1000 + 60 }), NOW).user, '(unknown user)');
});

test('a malformed or expired token is refused with a sentence', () => {
  assert.match(checkToken('not-a-token', NOW).error, /three dot-separated parts/);
  assert.match(checkToken('a.b.c', NOW).error, /three dot-separated parts/);
  assert.match(checkToken(token({ sub: 'x', exp: NOW / 1000 - 1 }), NOW).error, /expired .* \.\/chatmesh token/);
  assert.equal(decodeJwt(`x.${Buffer.from('"s"').toString('base64url')}.y`), null); // claims must be an object
});
