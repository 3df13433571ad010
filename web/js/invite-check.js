/**
 * The join page's invite check (`GET /api/me`), asked before the page's other modules
 * have loaded: join.html loads this module on its own (`async`), so the request travels
 * while join.js's imports are still fetched and run; join.js imports this module (the
 * same instance) and awaits the answer. The token is only read here: join.js takes it
 * out of the address bar, after reading what another node's redirect put beside it.
 * @module invite-check
 */
import { fetchMe, tokenFromHash } from "./api.js";

/** This tab's invite token, kept while the address bar no longer shows it (join.js). */
export const TOKEN_KEY = "tiaojie.join.token";

/** The token in the fragment, else the one this tab kept (a reload). */
function pageToken() {
  const token = tokenFromHash();
  if (token) return token;
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage disabled: join.js finds no token either
  }
}

const earlyToken = pageToken();
const early = earlyToken ? fetchMe(earlyToken) : null;
// awaited by join.js (its errors shown there): not an unhandled rejection meanwhile
early?.catch(() => {});
performance.mark("tiaojie:me_asked");

/**
 * `/api/me`'s answer for `token`: the request made on loading if it was for this token,
 * else a new one.
 * @param {string} token
 * @returns {Promise<import("./api.js").MeAnswer>}
 */
export function inviteAnswer(token) {
  return early && token === earlyToken ? early : fetchMe(token);
}
