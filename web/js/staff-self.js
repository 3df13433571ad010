/**
 * The staff page's "my account" panel, for every account: changing one's own password
 * (`POST /api/session/password`: the other sessions end, this one stays) and one's API
 * keys (`GET/POST /api/keys`, `DELETE /api/keys/{id}`). A new key's text is in the
 * answer that made it only: it is shown once, with a copy button, and forgotten when the
 * page is left.
 *
 * Contract with tests: `#self-section`; `#password-form` (`#current-password`,
 * `#new-password`, `#new-password-again`, `#password-change`, `#password-error`);
 * `#key-form` (`#key-label`, `#key-create`, `#key-error`); `#key-made` (shown once a key
 * is made) with `#key-value` and `#key-copy`; `#keys-empty`; `#key-list` of
 * `li.api-key[data-key-id][data-revoked]`, each with `.api-key-label` and, unless
 * revoked, `button[data-action="revoke-key"]`.
 *
 * @module staff-self
 */
import { getLang, onLangChange, t } from "./i18n.js";
import { copyText } from "./staff-rooms.js";
import { confirmAction, h, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const MIN_PASSWORD = 10;

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString(getLang(), {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

function showError(id, text) {
  const el = $(id);
  el.textContent = text;
  el.hidden = !text;
}

export class SelfPanel {
  /**
   * @param {object} opts
   * @param {{id: string, login: string}} opts.account the account using the page
   * @param {(method: string, path: string, payload?: object) => Promise<any>} opts.call
   * @param {(e: unknown) => string} opts.errorText
   */
  constructor({ account, call, errorText }) {
    this.me = account;
    this.call = call;
    this.errorText = errorText;
    this.keys = [];
  }

  async start() {
    $("self-section").hidden = false;
    $("self-login").value = this.me.login;
    $("password-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.changePassword();
    });
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createKey();
    });
    $("key-copy").addEventListener("click", async () => {
      const done = await copyText($("key-value").value, $("key-value"));
      toast(t(done ? "staff.keys.copied" : "invite.copy_failed"), done ? "info" : "error");
    });
    onLangChange(() => this.renderKeys());
    await this.loadKeys();
  }

  // -- the password ------------------------------------------------------------------------
  async changePassword() {
    const current = $("current-password");
    const fresh = $("new-password");
    const again = $("new-password-again");
    let problem = "";
    if (!current.value) problem = t("staff.self.password.missing");
    else if ([...fresh.value].length < MIN_PASSWORD) problem = t("staff.password.short");
    else if (fresh.value !== again.value) problem = t("staff.self.password.mismatch");
    showError("password-error", problem);
    if (problem) return;
    $("password-change").disabled = true;
    try {
      await this.call("POST", "/api/session/password", {
        current_password: current.value,
        new_password: fresh.value,
      });
      for (const input of [current, fresh, again]) input.value = "";
      toast(t("staff.self.password.changed"));
    } catch (e) {
      current.value = "";
      showError("password-error", this.errorText(e));
    } finally {
      $("password-change").disabled = false;
    }
  }

  // -- API keys ----------------------------------------------------------------------------
  async loadKeys() {
    try {
      this.keys = (await this.call("GET", "/api/keys")).keys;
    } catch (e) {
      toast(this.errorText(e), "error");
      return;
    }
    this.renderKeys();
  }

  renderKeys() {
    // newest first; revoked ones after the ones in use
    const keys = [...this.keys].sort(
      (a, b) => Number(Boolean(a.revoked_at)) - Number(Boolean(b.revoked_at)) || b.created_at - a.created_at,
    );
    $("keys-empty").hidden = keys.length > 0;
    $("key-list").replaceChildren(...keys.map((key) => this.keyItem(key)));
  }

  keyItem(key) {
    const revoked = Boolean(key.revoked_at);
    const facts = [t("staff.keys.created", { time: when(key.created_at) })];
    facts.push(key.last_used_at ? t("staff.keys.used", { time: when(key.last_used_at) }) : t("staff.keys.unused"));
    return h(
      "li.card.api-key",
      { dataset: { keyId: key.id, revoked: String(revoked) } },
      h(
        "div.account-head",
        {},
        h("strong.api-key-label", { text: key.label }),
        h("code.api-key-id.hint", { text: `tjk1.${key.id}.…` }),
        revoked ? h("span.badge.account-disabled", { text: t("staff.keys.revoked") }) : null,
      ),
      h("p.hint.api-key-facts", { text: facts.join(" · ") }),
      revoked
        ? null
        : h("button.btn.danger-outline", {
            type: "button",
            dataset: { action: "revoke-key" },
            text: t("staff.keys.revoke"),
            on: { click: () => this.revokeKey(key) },
          }),
    );
  }

  async createKey() {
    const label = $("key-label").value.trim();
    showError("key-error", label ? "" : t("staff.keys.label.empty"));
    if (!label) return;
    $("key-create").disabled = true;
    try {
      const made = await this.call("POST", "/api/keys", { label });
      $("key-label").value = "";
      $("key-value").value = made.key;
      $("key-made").hidden = false;
      $("key-value").focus();
      $("key-value").select();
      this.keys = [...this.keys.filter((k) => k.id !== made.id), { ...made, key: undefined }];
      this.renderKeys();
    } catch (e) {
      showError("key-error", this.errorText(e));
    } finally {
      $("key-create").disabled = false;
    }
  }

  async revokeKey(key) {
    const ok = await confirmAction(t("staff.keys.revoke.confirm", { label: key.label }), { danger: true });
    if (!ok) return;
    try {
      const revoked = await this.call("DELETE", `/api/keys/${encodeURIComponent(key.id)}`);
      this.keys = this.keys.map((k) => (k.id === revoked.id ? revoked : k));
      if ($("key-value").value.includes(`.${key.id}.`)) {
        $("key-value").value = "";
        $("key-made").hidden = true;
      }
      toast(t("staff.keys.revoked_toast", { label: key.label }));
      this.renderKeys();
    } catch (e) {
      toast(this.errorText(e), "error");
    }
  }
}
