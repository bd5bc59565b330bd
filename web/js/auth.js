// The sign-in token: decoding its claims, keeping it in localStorage, and
// the local checks made before the server sees it (checkToken). No DOM.

export const TOKEN_KEY = 'chatmesh.token';

export function decodeJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

export function readStoredToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage can be disabled; the token then lives for this page only.
  }
}

// Checks a pasted or stored token's shape and expiry (now: ms), only to say
// what is wrong early: the server does the real verification on the first
// request. {token, user} or {error: a sentence for the person}.
export function checkToken(raw, now) {
  const token = String(raw || '').trim().replace(/^Bearer\s+/i, '');
  const claims = decodeJwt(token);
  if (!claims) return { error: 'That does not look like an access token (expected three dot-separated parts).' };
  if (typeof claims.exp === 'number' && claims.exp * 1000 < now) {
    return { error: `That token expired on ${new Date(claims.exp * 1000).toLocaleString()}. Get a new one with ./chatmesh token --user NAME.` };
  }
  return { token, user: typeof claims.sub === 'string' && claims.sub ? claims.sub : '(unknown user)' };
}
