/**
 * The staff home page (`/staff`), after login: what each role does, on a phone too.
 *
 * - cases (js/staff-cases.js): the coordinator's queue, the mediator's inbox, sessions
 *   from a case, staff intake;
 * - mediator: their calendar of sessions and bookings, by day and week, and their
 *   availability — js/staff-calendar.js;
 * - mediator: their rooms (`GET /api/rooms`), a new room, invite links for parties and
 *   experts (copy and send), and entering their own room as its mediator
 *   (`POST /api/rooms/{id}/enter`, then the join page) — js/staff-rooms.js;
 * - coordinator: the rooms of their organisation, read only (same list);
 * - archivist: the link to the recordings page, which works with this session;
 * - coordinator, admin: the link to the statistics page (`#stats-link`, js/statistics.js);
 * - admin: accounts (create, roles, reset password, disable), organisations, the audit
 *   log — js/staff-admin.js;
 * - everyone: their own password and API keys (made, shown once, revoked) —
 *   js/staff-self.js.
 *
 * Every call goes through js/api.js with the session's credential (the cookie, and the
 * CSRF token from `GET /api/session` on writes). No session: back to `/login`.
 *
 * Contract with tests: `document.body.dataset.state` is `loading`, `ready` or `error`;
 * `document.body.dataset.roles` lists the account's roles (space separated). Stable
 * ids: `#staff-name`, `#staff-org`, `#staff-roles`, `#logout-button`,
 * `#logout-all-button`, the sections `#rooms-section`, `#archive-section` (with
 * `#archive-link`), `#accounts-section`, `#organisations-section`, `#audit-section`,
 * `#self-section`;
 * the rest is in the modules.
 *
 * @module staff
 */
import { ApiError, apiFetch, callJson, currentSession, sessionCredential } from "./api.js";
import { errorText, initI18n, onLangChange, t } from "./i18n.js";
import { AdminPanel } from "./staff-admin.js";
import { CalendarPanel } from "./staff-calendar.js";
import { CasesPanel } from "./staff-cases.js";
import { RoomsPanel } from "./staff-rooms.js";
import { SelfPanel } from "./staff-self.js";
import { confirmAction, h, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["admin", "coordinator", "mediator", "archivist"];

/** What this page knows of the session. */
const page = {
  /** @type {import("./api.js").StaffSession|null} */
  session: null,
  /** @type {import("./api.js").SessionCredential|null} */
  credential: null,
  /** @type {{code: string, message: string}|null} */
  error: null,
};

function toLogin() {
  location.replace("/login");
}

/**
 * Call the API with this session; a session that ended sends the page to /login.
 * @param {string} method
 * @param {string} path
 * @param {object} [payload]
 */
/** A staff request whose answer is not JSON (a ZIP to download): the Response. */
export async function staffFetch(method, path, payload) {
  try {
    return await apiFetch(method, path, page.credential, { payload });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) toLogin();
    throw e;
  }
}

export async function staffCall(method, path, payload) {
  try {
    return await callJson(method, path, page.credential, payload);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) toLogin();
    throw e;
  }
}

/** The text of an API error on the staff pages. */
export function staffError(e) {
  const code = e instanceof ApiError ? e.code : "network";
  return errorText(code, e instanceof ApiError ? e.message : "", ["staff.error", "reason"]);
}

function renderWho() {
  const { account, organisation } = page.session;
  $("staff-name").textContent = t("staff.hello", { name: account.name });
  $("staff-org").textContent = organisation ? organisation.name : "";
  $("staff-roles").replaceChildren(
    ...ROLES.filter((r) => account.roles.includes(r)).map((r) =>
      h(`span.badge.staff-role.staff-role-${r}`, { dataset: { role: r }, text: t(`staff.role.${r}`) }),
    ),
  );
  if (account.roles.length === 0) {
    $("staff-roles").append(h("span.hint", { text: t("staff.role.none") }));
  }
}

function renderError() {
  const el = $("staff-error");
  el.hidden = !page.error;
  if (page.error) el.textContent = errorText(page.error.code, page.error.message, ["staff.error", "reason"]);
}

async function logout(everywhere) {
  if (everywhere && !(await confirmAction(t("staff.logout_all.confirm"), { danger: true }))) return;
  try {
    await staffCall("DELETE", everywhere ? "/api/sessions" : "/api/session");
  } catch (e) {
    toast(staffError(e), "error");
    return;
  }
  toLogin();
}

async function main() {
  initI18n();
  onLangChange(() => {
    if (page.session) renderWho();
    renderError();
  });
  let session;
  try {
    session = await currentSession();
  } catch (e) {
    page.error = { code: e.code || "network", message: e.message || "" };
    document.body.dataset.state = "error";
    $("staff-loading").hidden = true;
    renderError();
    return;
  }
  if (!session || !session.account || session.via !== "session") {
    toLogin();
    return;
  }
  page.session = session;
  page.credential = sessionCredential(session.csrf_token);
  const roles = session.account.roles;
  document.body.dataset.roles = roles.join(" ");
  $("staff-loading").hidden = true;
  $("staff-who").hidden = false;
  renderWho();
  $("logout-button").addEventListener("click", () => logout(false));
  $("logout-all-button").addEventListener("click", () => logout(true));

  const tasks = [];
  if (roles.some((r) => r === "mediator" || r === "coordinator" || r === "admin")) {
    const cases = new CasesPanel({
      account: session.account,
      call: staffCall,
      fetchRaw: staffFetch,
      errorText: staffError,
    });
    tasks.push(cases.start());
  }
  if (roles.includes("mediator")) {
    const calendar = new CalendarPanel({ account: session.account, call: staffCall, errorText: staffError });
    tasks.push(calendar.start());
  }
  if (roles.some((r) => r === "mediator" || r === "coordinator" || r === "admin")) {
    const rooms = new RoomsPanel({ account: session.account, call: staffCall, errorText: staffError });
    tasks.push(rooms.start());
  }
  if (roles.includes("archivist") || roles.includes("admin")) {
    $("archive-section").hidden = false;
  }
  if (roles.includes("coordinator") || roles.includes("admin")) {
    $("stats-link-section").hidden = false; // the statistics page (js/statistics.js)
  }
  if (roles.includes("admin")) {
    const admin = new AdminPanel({ account: session.account, call: staffCall, errorText: staffError });
    tasks.push(admin.start());
  }
  const self = new SelfPanel({ account: session.account, call: staffCall, errorText: staffError });
  tasks.push(self.start());
  await Promise.allSettled(tasks);
  document.body.dataset.state = "ready";
}

main();
