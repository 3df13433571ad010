/**
 * The staff page's admin panels: accounts (create; change roles; reset a password;
 * disable or enable), organisations (list, add) and the audit log (newest first, by
 * action, page by page).
 *
 * Contract with tests: `#account-form` (`#account-login`, `#account-name`,
 * `#account-organisation`, `#account-roles` with `input[name="role"][value]`,
 * `#account-password`, `#account-create`, `#account-error`); `#account-list` of
 * `li.account[data-account-id][data-login][data-disabled]`, each with
 * `input[data-role]` checkboxes and `button[data-action="save-roles"]`,
 * `input[name="new-password"]` and `button[data-action="reset-password"]`,
 * `button[data-action="toggle-disabled"]`; `#organisation-list` of
 * `li.organisation[data-organisation-id]`, `#organisation-form`; `#audit-action`,
 * `#audit-list` of `li.audit-entry[data-action]`, `#audit-more`.
 *
 * @module staff-admin
 */
import { getLang, onLangChange, t } from "./i18n.js";
import { confirmAction, h, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["admin", "coordinator", "mediator", "archivist"];
const ACTIONS = [
  "account_created",
  "account_changed",
  "account_disabled",
  "account_enabled",
  "password_reset",
  "password_changed",
  "sessions_revoked",
  "api_key_created",
  "api_key_revoked",
  "login",
  "logout",
  "login_failed",
  "login_locked",
  "organisation_created",
  "organisation_changed",
  "room_created",
  "room_entered",
  "room_ended",
  "invite_created",
  "invite_revoked",
  "recording_started",
  "recording_stopped",
  "agreement_sealed",
  "case_registered",
  "case_changed",
  "case_attachment_added",
  "case_session_scheduled",
  "case_settings_changed",
  "expert_added",
];
const PAGE = 50;
const MIN_PASSWORD = 10;

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString(getLang(), {
    dateStyle: "medium",
    timeStyle: "medium",
  });
}

function roleChecks(selected, name) {
  return ROLES.map((role) =>
    h(
      "label.check-row.role-check",
      {},
      h("input", {
        type: "checkbox",
        name,
        value: role,
        dataset: { role },
        checked: selected.includes(role),
      }),
      h("span", { text: t(`staff.role.${role}`) }),
    ),
  );
}

export class AdminPanel {
  /**
   * @param {object} opts
   * @param {{id: string}} opts.account the admin using the page
   * @param {(method: string, path: string, payload?: object) => Promise<any>} opts.call
   * @param {(e: unknown) => string} opts.errorText
   */
  constructor({ account, call, errorText }) {
    this.me = account;
    this.call = call;
    this.errorText = errorText;
    this.accounts = [];
    this.organisations = [];
    this.entries = [];
    this.nextBefore = null;
  }

  async start() {
    for (const id of ["accounts-section", "organisations-section", "audit-section"]) {
      $(id).hidden = false;
    }
    $("account-roles").append(...roleChecks(["mediator"], "role"));
    $("account-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createAccount();
    });
    $("organisation-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createOrganisation();
    });
    const filter = $("audit-action");
    filter.replaceChildren(this.actionOptions());
    filter.addEventListener("change", () => this.loadAudit(false));
    $("audit-more").addEventListener("click", () => this.loadAudit(true));
    onLangChange(() => {
      for (const label of $("account-roles").querySelectorAll(".role-check")) {
        label.querySelector("span").textContent = t(`staff.role.${label.querySelector("input").value}`);
      }
      const chosen = filter.value;
      filter.replaceChildren(this.actionOptions());
      filter.value = chosen;
      this.renderAccounts();
      this.renderOrganisations();
      this.renderAudit();
    });
    await Promise.allSettled([this.loadDirectory(), this.loadAudit(false)]);
  }

  actionOptions() {
    const all = document.createDocumentFragment();
    all.append(new Option(t("staff.audit.all"), ""));
    for (const action of ACTIONS) all.append(new Option(t(`audit.${action}`), action));
    return all;
  }

  // -- accounts and organisations ---------------------------------------------------------
  async loadDirectory() {
    try {
      const [accounts, organisations] = await Promise.all([
        this.call("GET", "/api/accounts"),
        this.call("GET", "/api/organisations"),
      ]);
      this.accounts = accounts.accounts;
      this.organisations = organisations.organisations;
    } catch (e) {
      toast(this.errorText(e), "error");
      return;
    }
    this.renderAccounts();
    this.renderOrganisations();
  }

  organisationName(id) {
    return this.organisations.find((o) => o.id === id)?.name || id;
  }

  renderOrganisations() {
    const select = $("account-organisation");
    const chosen = select.value || this.me.organisation_id;
    select.replaceChildren(...this.organisations.map((o) => new Option(o.name, o.id)));
    select.value = chosen;
    $("organisation-list").replaceChildren(
      ...this.organisations.map((o) =>
        h(
          "li.organisation",
          { dataset: { organisationId: o.id } },
          h("span.organisation-name", { text: o.name }),
          h("span.hint", {
            text: t("staff.organisation.members", {
              n: this.accounts.filter((a) => a.organisation_id === o.id).length,
            }),
          }),
        ),
      ),
    );
  }

  renderAccounts() {
    $("accounts-count").textContent = String(this.accounts.length);
    $("account-list").replaceChildren(...this.accounts.map((a) => this.accountItem(a)));
  }

  accountItem(account) {
    const self = account.id === this.me.id;
    const li = h(
      "li.card.account",
      {
        dataset: {
          accountId: account.id,
          login: account.login,
          disabled: String(account.disabled),
        },
      },
      h(
        "div.account-head",
        {},
        h("strong.account-name", { text: account.name }),
        h("span.hint", { text: `${account.login} · ${this.organisationName(account.organisation_id)}` }),
        account.disabled ? h("span.badge.account-disabled", { text: t("staff.account.disabled") }) : null,
      ),
    );
    const checks = h("fieldset.role-checks", {}, h("legend.sr-only", { text: t("staff.account.roles") }), ...roleChecks(account.roles, `roles-${account.id}`));
    const password = h("input", {
      type: "password",
      name: "new-password",
      maxlength: 256,
      autocomplete: "new-password",
      "aria-label": t("staff.account.new_password"),
      placeholder: t("staff.account.new_password"),
    });
    li.append(
      checks,
      h(
        "div.account-actions",
        {},
        h("button.btn", {
          type: "button",
          dataset: { action: "save-roles" },
          text: t("staff.account.save_roles"),
          on: { click: () => this.saveRoles(account, checks) },
        }),
        h("button.btn.danger-outline", {
          type: "button",
          dataset: { action: "toggle-disabled" },
          disabled: self,
          text: t(account.disabled ? "staff.account.enable" : "staff.account.disable"),
          on: { click: () => this.toggleDisabled(account) },
        }),
      ),
      h(
        "div.copy-row.account-password",
        {},
        password,
        h("button.btn", {
          type: "button",
          dataset: { action: "reset-password" },
          text: t("staff.account.reset_password"),
          on: { click: () => this.resetPassword(account, password) },
        }),
      ),
    );
    return li;
  }

  async createAccount() {
    const error = $("account-error");
    const roles = [...$("account-roles").querySelectorAll("input:checked")].map((i) => i.value);
    const body = {
      login: $("account-login").value.trim(),
      name: $("account-name").value.trim(),
      organisation_id: $("account-organisation").value,
      roles,
      password: $("account-password").value,
    };
    let problem = "";
    if (!body.login || !body.name) problem = t("staff.account.missing");
    else if ([...body.password].length < MIN_PASSWORD) problem = t("staff.password.short");
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    $("account-create").disabled = true;
    try {
      const made = await this.call("POST", "/api/accounts", body);
      for (const id of ["account-login", "account-name", "account-password"]) $(id).value = "";
      toast(t("staff.account.created", { login: made.login }));
      await this.loadDirectory();
      await this.loadAudit(false);
    } catch (e) {
      error.textContent = this.errorText(e);
      error.hidden = false;
    } finally {
      $("account-create").disabled = false;
    }
  }

  async saveRoles(account, checks) {
    const roles = [...checks.querySelectorAll("input:checked")].map((i) => i.value);
    await this.change(account, { roles }, t("staff.account.saved", { login: account.login }));
  }

  async toggleDisabled(account) {
    const disabling = !account.disabled;
    if (disabling) {
      const ok = await confirmAction(t("staff.account.disable.confirm", { name: account.name }), {
        danger: true,
      });
      if (!ok) return;
    }
    await this.change(account, { disabled: disabling }, t("staff.account.saved", { login: account.login }));
  }

  async change(account, body, done) {
    try {
      await this.call("PATCH", `/api/accounts/${encodeURIComponent(account.id)}`, body);
      // the list drawn anew first, then "saved": what is typed after the message (a new
      // password) is not wiped by a list that was still being redrawn
      await this.loadDirectory();
      toast(done);
      await this.loadAudit(false);
    } catch (e) {
      toast(this.errorText(e), "error");
    }
  }

  async resetPassword(account, input) {
    const password = input.value;
    if ([...password].length < MIN_PASSWORD) {
      toast(t("staff.password.short"), "error");
      input.focus();
      return;
    }
    try {
      await this.call("POST", `/api/accounts/${encodeURIComponent(account.id)}/password`, {
        password,
      });
      input.value = "";
      toast(t("staff.account.password_reset", { login: account.login }));
      await this.loadAudit(false);
    } catch (e) {
      toast(this.errorText(e), "error");
    }
  }

  async createOrganisation() {
    const input = $("organisation-name");
    const error = $("organisation-error");
    const name = input.value.trim();
    if (!name) {
      error.textContent = t("staff.organisation.empty");
      error.hidden = false;
      return;
    }
    error.hidden = true;
    try {
      await this.call("POST", "/api/organisations", { name });
      input.value = "";
      await this.loadDirectory();
    } catch (e) {
      error.textContent = this.errorText(e);
      error.hidden = false;
    }
  }

  // -- the audit log -----------------------------------------------------------------------
  /** A page of the audit log; the newest request wins over an older answer arriving late. */
  async loadAudit(more) {
    const generation = (this.auditLoads = (this.auditLoads ?? 0) + 1);
    const params = new URLSearchParams({ limit: String(PAGE) });
    const action = $("audit-action").value;
    if (action) params.set("action", action);
    if (more && this.nextBefore) params.set("before", String(this.nextBefore));
    try {
      const page = await this.call("GET", `/api/audit?${params}`);
      if (generation !== this.auditLoads) return;
      this.entries = more ? [...this.entries, ...page.entries] : page.entries;
      this.nextBefore = page.next_before;
    } catch (e) {
      if (generation === this.auditLoads) toast(this.errorText(e), "error");
      return;
    }
    this.renderAudit();
  }

  actorText(actor) {
    if (actor.kind === "account") {
      const account = this.accounts.find((a) => a.id === actor.id);
      return account ? `${account.name}（${account.login}）` : actor.id;
    }
    return t(`audit.actor.${actor.kind}`);
  }

  renderAudit() {
    $("audit-empty").hidden = this.entries.length > 0;
    $("audit-more").hidden = !this.nextBefore;
    $("audit-list").replaceChildren(
      ...this.entries.map((entry) =>
        h(
          "li.audit-entry",
          { dataset: { action: entry.action, entryId: String(entry.id) } },
          h("span.audit-when.hint", { text: when(entry.at) }),
          h("span.audit-what", { text: t(`audit.${entry.action}`) }),
          h("span.audit-who", { text: this.actorText(entry.actor) }),
          entry.target ? h("code.audit-target", { text: entry.target }) : null,
        ),
      ),
    );
  }
}
