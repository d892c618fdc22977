/**
 * The manager's JSON API from the browser: the `{"success":"true","content":…}` envelope
 * unwrapped, every failure turned into an `ApiError` carrying the server's own message (never a
 * bare "failed"), and the admin token sent as `Authorization: Bearer …` when one is set.
 *
 * The token lives in sessionStorage: it survives a reload but not closing the tab, and other
 * sites cannot read it. Where storage is unavailable it is kept in memory for this page.
 */

const TOKEN_KEY = 'pixpool.manager.token';
let memoryToken;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return memoryToken;
  }
}

export function setToken(token) {
  memoryToken = token || undefined;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled (private mode, policy): the in-memory copy serves this page.
  }
}

/** `await api('POST', '/api/manager/mode', { mode: 'manual' })` → the envelope's content. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      cache: 'no-store',
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiError(
      0,
      'The manager could not be reached. Is it running, and is the network up?',
    );
  }
  let payload;
  try {
    payload = await response.json();
  } catch {
    payload = undefined;
  }
  const ok = payload?.success === 'true' || payload?.success === true;
  if (response.ok && ok) return payload.content;
  const message =
    typeof payload?.error?.message === 'string' && payload.error.message
      ? payload.error.message
      : `The manager answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''} ${
          response.ok ? 'with a body that is not its JSON envelope' : 'without an explanation'
        }.`;
  throw new ApiError(response.ok ? 502 : response.status, message);
}
