/**
 * The REST calls the browser client makes (see docs/PROTOCOL.md), and the one fetch
 * wrapper every page uses for them: the token in a header, errors as {@link ApiError}.
 * @module api
 */

/** An error answered by the server (`{"error", "message"}`) or a network failure. */
export class ApiError extends Error {
  /**
   * @param {string} code   protocol error code, or "network" / "server"
   * @param {string} message human-readable text from the server, if any
   * @param {number} status HTTP status (0 for a network failure)
   */
  constructor(code, message, status) {
    super(message || code);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    /** seconds to wait before trying again (a 429's Retry-After), else 0 */
    this.retryAfter = 0;
  }
}

/**
 * A staff member's browser session as a credential: the browser sends the session cookie
 * itself (HttpOnly: no script reads it); writes carry the session's CSRF token in
 * `X-CSRF-Token` (from `GET /api/session`). See docs/ACCOUNTS.md.
 * @typedef {{session: true, csrf: string}} SessionCredential
 */

/**
 * The credential of the staff session this browser holds.
 * @param {string} csrf the session's CSRF token
 * @returns {SessionCredential}
 */
export function sessionCredential(csrf) {
  return { session: true, csrf };
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Fetch `path` with the token in the `Authorization` header (never in the URL), or with
 * the staff session's cookie and CSRF token.
 * @param {string} method
 * @param {string} path
 * @param {string|SessionCredential} token
 * @param {{payload?: object, accept?: string}} [opts] `payload` is sent as JSON
 * @returns {Promise<Response>} a 2xx response
 * @throws {ApiError} on a network failure or an error answer (its `error` code, if any)
 */
export async function apiFetch(method, path, token, { payload, accept } = {}) {
  const headers = {};
  let credentials = "omit";
  if (typeof token === "string") {
    headers.Authorization = `Bearer ${token}`;
  } else {
    credentials = "same-origin"; // the session cookie (SameSite=Strict, HttpOnly)
    if (!SAFE_METHODS.has(method)) headers["X-CSRF-Token"] = token.csrf;
  }
  if (accept) headers.Accept = accept;
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      cache: "no-store",
      credentials,
    });
  } catch (e) {
    throw new ApiError("network", String(e), 0);
  }
  if (res.ok) return res;
  const body = await jsonOrNull(res);
  if (body && typeof body.error === "string") {
    const error = new ApiError(body.error, body.message || "", res.status);
    // a 429's Retry-After (seconds): how long a locked login stays locked
    error.retryAfter = Number(res.headers.get("Retry-After")) || 0;
    throw error;
  }
  throw new ApiError(res.status >= 500 ? "server" : "unknown", res.statusText, res.status);
}

/**
 * Call a JSON endpoint with a bearer token (or the staff session).
 * @param {string} method
 * @param {string} path
 * @param {string|SessionCredential} token
 * @param {object} [payload] sent as JSON
 * @returns {Promise<any>} the answer's JSON
 * @throws {ApiError}
 */
export async function callJson(method, path, token, payload) {
  const res = await apiFetch(method, path, token, { payload, accept: "application/json" });
  const body = await jsonOrNull(res);
  if (body === null) throw new ApiError("server", "response is not JSON", res.status);
  return body;
}

/** @param {Response} res */
async function jsonOrNull(res) {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/**
 * @typedef {object} MeAnswer
 * @property {{invite_id: string, room_id: string, role: string, side: string|null, name: string, expires_at: number}} invite
 * @property {{id: string, title: string, status: string, locked: boolean, lobby: boolean}} room
 */

/**
 * Who the invite token belongs to and which room it opens.
 * @param {string} token
 * @returns {Promise<MeAnswer>}
 */
export function fetchMe(token) {
  return callJson("GET", "/api/me", token);
}

/**
 * @typedef {object} CreatedInvite
 * @property {string} invite_id
 * @property {string} url the invite link to send
 * @property {string} token
 * @property {number} expires_at
 * @property {string} role
 * @property {"applicant"|"respondent"|null} side a party's side of the dispute
 * @property {string} name
 */

/**
 * Create an invite link (a mediator may invite parties, experts and observers; a party
 * may be given a side, 申请人 / 被申请人).
 * @param {string} token the mediator's own invite token
 * @param {string} roomId
 * @param {{role: string, name: string, side?: string, expires_in?: number}} invite
 * @returns {Promise<CreatedInvite>}
 */
export function createInvite(token, roomId, invite) {
  return callJson("POST", `/api/rooms/${encodeURIComponent(roomId)}/invites`, token, invite);
}

/**
 * Download the signed agreement PDF (`GET /api/agreements/{code}/pdf` with this
 * participant's own token) and hand it to the browser as a file. The token goes in a
 * header, never in a URL, so the link cannot leak.
 * @param {string|SessionCredential} token
 * @param {string} code the agreement's code
 * @returns {Promise<void>}
 */
export async function downloadAgreementPdf(token, code) {
  const res = await apiFetch("GET", `/api/agreements/${encodeURIComponent(code)}/pdf`, token);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `调解协议书-${code.slice(0, 8)}.pdf`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * Read the invite token from the URL fragment (`#token=...`).
 * @param {string} [hash] defaults to location.hash
 * @returns {string} the token, or "" when missing
 */
export function tokenFromHash(hash = location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  return (params.get("token") || "").trim();
}

/**
 * The page's token: taken from the URL fragment, which is then removed from the address
 * bar (so history, bookmarks, screen shares and onlookers do not get it) and kept in
 * sessionStorage under `key` for this tab, so that a reload still works. Without a
 * fragment, the tab's kept token (a reload). If storage is refused, the fragment stays.
 * @param {string} key the sessionStorage key of this page's token
 * @returns {string} the token, or "" when there is none
 */
export function takeTokenFromHash(key) {
  const token = tokenFromHash();
  try {
    if (!token) return sessionStorage.getItem(key) || "";
    sessionStorage.setItem(key, token);
  } catch {
    return token;
  }
  history.replaceState(history.state, "", location.pathname + location.search);
  return token;
}

/**
 * @typedef {object} StaffSession
 * @property {"session"|"api_key"|"admin_token"} via
 * @property {{id: string, login: string, name: string, organisation_id: string, roles: string[]}|null} account
 * @property {{id: string, name: string, short_name: string}|null} organisation
 * @property {string|null} csrf_token
 * @property {number|null} expires_at
 */

/**
 * The staff session this browser holds (`GET /api/session` with its cookie), or null
 * when it holds none (not logged in, or the session ended).
 * @returns {Promise<StaffSession|null>}
 * @throws {ApiError} for other failures (network, server)
 */
export async function currentSession() {
  try {
    return await callJson("GET", "/api/session", sessionCredential(""));
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return null;
    throw e;
  }
}
