/**
 * The staff login page (`/login`): login and password -> `POST /api/session`, which sets
 * the session cookie; then the staff home page (`/staff`). Someone already logged in
 * goes straight there.
 *
 * Contract with tests: `document.body.dataset.state` is `loading`, `ready` or `busy`;
 * `#login-form` with `#login-input`, `#password-input`, `#login-submit`; a refusal shows
 * in `#login-error` with `data-reason` (`login_failed`, `login_locked`,
 * `account_disabled`, `network`, ...). The password never leaves this form but in the
 * request body; it is cleared after every attempt.
 *
 * @module login
 */
import { ApiError, callJson, currentSession, sessionCredential } from "./api.js";
import { errorText, initI18n, onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const HOME = "/staff";

/** The last refusal: {code, message, retryAfter} (re-rendered on language change). */
let refusal = null;

function showError() {
  const el = $("login-error");
  if (!refusal) {
    el.hidden = true;
    delete el.dataset.reason;
    return;
  }
  const { code, message, minutes } = refusal;
  el.dataset.reason = code;
  el.textContent =
    code === "login_locked"
      ? t("login.error.login_locked", { minutes })
      : errorText(code, message, ["login.error", "reason"]);
  el.hidden = false;
}

async function submit(event) {
  event.preventDefault();
  const login = $("login-input").value.trim();
  const password = $("password-input").value;
  if (!login || !password) {
    refusal = { code: "empty", message: "" };
    showError();
    (login ? $("password-input") : $("login-input")).focus();
    return;
  }
  document.body.dataset.state = "busy";
  $("login-submit").disabled = true;
  try {
    await callJson("POST", "/api/session", sessionCredential(""), { login, password });
    location.replace(HOME);
    return;
  } catch (e) {
    const error = e instanceof ApiError ? e : new ApiError("network", String(e), 0);
    const minutes = Math.max(1, Math.ceil(Number(error.retryAfter || 60) / 60));
    refusal = { code: error.code, message: error.message, minutes };
    showError();
    $("password-input").value = "";
    $("password-input").focus();
  } finally {
    $("login-submit").disabled = false;
    if (document.body.dataset.state === "busy") document.body.dataset.state = "ready";
  }
}

async function main() {
  initI18n();
  onLangChange(showError);
  $("login-form").addEventListener("submit", submit);
  try {
    if (await currentSession()) {
      location.replace(HOME);
      return;
    }
  } catch {
    /* the server did not answer: the form still works once it does */
  }
  document.body.dataset.state = "ready";
  $("login-input").focus();
}

main();
