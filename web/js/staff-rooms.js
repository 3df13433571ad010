/**
 * The staff page's rooms: a mediator's own (new room, invite links, enter as mediator,
 * end), a coordinator's organisation's (read only), every room for an admin.
 *
 * Contract with tests: `#room-form` (`#room-title-input`, `#room-lobby`, `#room-create`,
 * `#room-error`) for mediators; `#room-list` of
 * `article.room-card[data-room-id][data-status][data-manage]` (`data-manage="true"` when
 * this account runs the room), each with `.room-card-title`, `.room-card-meta`, and when
 * it runs the room: `button[data-action="enter"]`, `button[data-action="end"]` and
 * `details.room-invites` holding `form.staff-invite-form` (`select[name="role"]`,
 * `input[name="name"]`, `select[name="expires_in"]`, `button[data-action="invite"]`),
 * the new link in `.invite-result` (`input.invite-url`, `button[data-action="copy"]`)
 * and `li.invite[data-invite-id][data-role][data-revoked]` with
 * `button[data-action="revoke"]`.
 *
 * @module staff-rooms
 */
import { getLang, onLangChange, t } from "./i18n.js";
import { confirmAction, h, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const INVITE_ROLES = ["party", "expert", "observer"];
const LIFETIMES = [86400, 3 * 86400, 7 * 86400];
/** Names a party's link is usually made for (the agreement's two sides). */
const PARTY_NAMES = ["staff.invite.preset.applicant", "staff.invite.preset.respondent"];

function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleString(getLang(), {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

/** Copy `text`: the Clipboard API, else a selection of `input` for the user to copy. */
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}

export class RoomsPanel {
  /**
   * @param {object} opts
   * @param {{id: string, roles: string[], organisation_id: string}} opts.account
   * @param {(method: string, path: string, payload?: object) => Promise<any>} opts.call
   * @param {(e: unknown) => string} opts.errorText
   */
  constructor({ account, call, errorText }) {
    this.account = account;
    this.call = call;
    this.errorText = errorText;
    this.rooms = [];
    /** room id -> the invite just made there (its link, shown until the next) */
    this.made = new Map();
    /** rooms whose invite panel is open */
    this.open = new Set();
    this.mediator = account.roles.includes("mediator");
    this.admin = account.roles.includes("admin");
  }

  async start() {
    $("rooms-section").hidden = false;
    $("room-form").hidden = !this.mediator;
    $("room-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createRoom();
    });
    this.heading();
    onLangChange(() => {
      this.heading();
      this.render();
    });
    await this.load();
  }

  heading() {
    const coordinator = this.account.roles.includes("coordinator");
    const key = this.admin
      ? "staff.rooms.all"
      : this.mediator && coordinator
        ? "staff.rooms.both"
        : this.mediator
          ? "staff.rooms.mine"
          : "staff.rooms.organisation";
    $("rooms-heading-text").textContent = t(key);
  }

  /** Whether this account runs `room` (its owner, or an admin). */
  manages(room) {
    return this.admin || (this.mediator && room.owner_id === this.account.id);
  }

  async load() {
    try {
      const body = await this.call("GET", "/api/rooms");
      // the newest first: what a mediator works on now
      this.rooms = body.rooms.slice().sort((a, b) => b.created_at - a.created_at);
    } catch (e) {
      toast(this.errorText(e), "error");
      return;
    }
    this.render();
  }

  render() {
    $("rooms-count").textContent = String(this.rooms.length);
    $("rooms-empty").hidden = this.rooms.length > 0;
    const focused = document.activeElement?.closest?.("article.room-card")?.dataset.roomId;
    $("room-list").replaceChildren(...this.rooms.map((room) => this.card(room)));
    if (focused) {
      const again = document.querySelector(
        `article.room-card[data-room-id="${CSS.escape(focused)}"] .invite-url`,
      );
      if (again) again.focus({ preventScroll: true });
    }
  }

  card(room) {
    const manage = this.manages(room) && room.status === "open";
    const status = h(`span.badge.room-status.room-status-${room.status}`, {
      text: t(`staff.room.status.${room.status}`),
    });
    const facts = [
      t("staff.room.created", { time: when(room.created_at) }),
      t("staff.room.people", { inside: room.participant_count, waiting: room.lobby_count }),
    ];
    if (room.owner_name && room.owner_id !== this.account.id) {
      facts.unshift(t("staff.room.owner", { name: room.owner_name }));
    }
    const card = h(
      "article.card.room-card",
      { dataset: { roomId: room.id, status: room.status, manage: String(manage) } },
      h("div.room-card-head", {}, h("h3.room-card-title", { text: room.title }), status),
      h("p.room-card-meta.hint", { text: facts.join(" · ") }),
    );
    if (!manage) return card;
    card.append(
      h(
        "div.room-card-actions",
        {},
        h("button.btn.primary", {
          type: "button",
          dataset: { action: "enter" },
          text: t("staff.room.enter"),
          on: { click: (e) => this.enter(room, e.currentTarget) },
        }),
        h("button.btn.danger-outline", {
          type: "button",
          dataset: { action: "end" },
          text: t("staff.room.end"),
          on: { click: () => this.end(room) },
        }),
      ),
      this.invitePanel(room),
    );
    return card;
  }

  invitePanel(room) {
    const details = h(
      "details.room-invites",
      { open: this.open.has(room.id) },
      h("summary", { text: t("staff.invite.heading") }),
    );
    details.addEventListener("toggle", () => {
      if (details.open) this.open.add(room.id);
      else this.open.delete(room.id);
    });
    const roleSelect = h(
      "select",
      { name: "role", "aria-label": t("staff.invite.role") },
      ...INVITE_ROLES.map((r) => new Option(t(`role.${r}`), r)),
    );
    const listId = `names-${room.id}`;
    const nameInput = h("input", {
      type: "text",
      name: "name",
      maxlength: 64,
      autocomplete: "off",
      list: listId,
      "aria-label": t("staff.invite.name"),
      placeholder: t("staff.invite.name.placeholder"),
    });
    const names = h("datalist", { id: listId }, ...PARTY_NAMES.map((k) => new Option(t(k))));
    const lifetime = h(
      "select",
      { name: "expires_in", "aria-label": t("staff.invite.valid") },
      ...LIFETIMES.map((s) => new Option(t("staff.invite.days", { days: s / 86400 }), String(s))),
    );
    const error = h("p.field-error", { role: "alert", hidden: true });
    const form = h(
      "form.staff-invite-form",
      { novalidate: true },
      h(
        "label.field",
        {},
        h("span.field-label", { text: t("staff.invite.role") }),
        roleSelect,
      ),
      h(
        "label.field",
        {},
        h("span.field-label", { text: t("staff.invite.name") }),
        nameInput,
        names,
      ),
      h(
        "label.field",
        {},
        h("span.field-label", { text: t("staff.invite.valid") }),
        lifetime,
      ),
      error,
      h("button.btn.primary", {
        type: "submit",
        dataset: { action: "invite" },
        text: t("staff.invite.create"),
      }),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.invite(room, {
        role: roleSelect.value,
        name: nameInput.value.trim().replace(/\s+/g, " "),
        expires_in: Number(lifetime.value),
      }, error, form.querySelector("button[type=submit]"));
    });
    details.append(form);
    const made = this.made.get(room.id);
    if (made) details.append(this.result(made));
    const invites = (room.invites || []).filter((i) => i.role !== "recorder");
    if (invites.length) {
      details.append(
        h("h4", { text: t("staff.invite.list") }),
        h("ul.invite-list", {}, ...invites.map((i) => this.inviteItem(room, i))),
      );
    }
    return details;
  }

  result(made) {
    const url = h("input.invite-url", {
      type: "text",
      readonly: true,
      value: made.url,
      "aria-label": t("invite.url"),
      on: { focus: (e) => e.currentTarget.select() },
    });
    url.value = made.url;
    const copy = h("button.btn", {
      type: "button",
      dataset: { action: "copy" },
      text: t("invite.copy"),
      on: {
        click: async () => {
          const done = await copyText(url.value, url);
          toast(t(done ? "invite.copied" : "invite.copy_failed"), done ? "info" : "error");
        },
      },
    });
    return h(
      "div.invite-result",
      {},
      h("p.hint", { text: t("invite.for", { name: made.name, role: t(`role.${made.role}`) }) }),
      h("div.copy-row", {}, url, copy),
      h("p.hint", { text: t("staff.invite.until", { time: when(made.expires_at) }) }),
    );
  }

  inviteItem(room, invite) {
    const li = h(
      "li.invite",
      { dataset: { inviteId: invite.invite_id, role: invite.role, revoked: String(invite.revoked) } },
      h(
        "div.invite-main",
        {},
        h("span.invite-name", { text: invite.name }),
        h(`span.badge.role-${invite.role}`, { text: t(`role.${invite.role}`) }),
        h("span.hint", {
          text: invite.revoked
            ? t("staff.invite.revoked")
            : t("staff.invite.until", { time: when(invite.expires_at) }),
        }),
      ),
    );
    if (!invite.revoked) {
      li.append(
        h("button.btn.danger-outline", {
          type: "button",
          dataset: { action: "revoke" },
          text: t("staff.invite.revoke"),
          on: { click: () => this.revoke(room, invite) },
        }),
      );
    }
    return li;
  }

  // -- actions ---------------------------------------------------------------------------
  async createRoom() {
    const input = $("room-title-input");
    const title = input.value.trim();
    const error = $("room-error");
    if (!title) {
      error.textContent = t("staff.room.title.empty");
      error.hidden = false;
      input.focus();
      return;
    }
    error.hidden = true;
    $("room-create").disabled = true;
    try {
      const room = await this.call("POST", "/api/rooms", { title, lobby: $("room-lobby").checked });
      input.value = "";
      this.open.add(room.id); // its next step: invite the parties
      toast(t("staff.room.created_toast", { title: room.title }));
      await this.load();
    } catch (e) {
      error.textContent = this.errorText(e);
      error.hidden = false;
    } finally {
      $("room-create").disabled = false;
    }
  }

  async invite(room, body, error, button) {
    if (!body.name) {
      error.textContent = t("invite.name.empty");
      error.hidden = false;
      return;
    }
    error.hidden = true;
    button.disabled = true;
    try {
      const made = await this.call("POST", `/api/rooms/${encodeURIComponent(room.id)}/invites`, body);
      this.made.set(room.id, made);
      this.open.add(room.id);
      await this.load();
      const url = document.querySelector(
        `article.room-card[data-room-id="${CSS.escape(room.id)}"] .invite-url`,
      );
      if (url) {
        url.focus({ preventScroll: true });
        url.scrollIntoView({ block: "nearest" });
      }
    } catch (e) {
      error.textContent = this.errorText(e);
      error.hidden = false;
      button.disabled = false;
    }
  }

  async revoke(room, invite) {
    if (!(await confirmAction(t("staff.invite.revoke.confirm", { name: invite.name }), { danger: true }))) {
      return;
    }
    try {
      await this.call(
        "DELETE",
        `/api/rooms/${encodeURIComponent(room.id)}/invites/${encodeURIComponent(invite.invite_id)}`,
      );
      if (this.made.get(room.id)?.invite_id === invite.invite_id) this.made.delete(room.id);
      await this.load();
    } catch (e) {
      toast(this.errorText(e), "error");
    }
  }

  async enter(room, button) {
    button.disabled = true;
    try {
      const entry = await this.call("POST", `/api/rooms/${encodeURIComponent(room.id)}/enter`);
      location.assign(entry.url);
    } catch (e) {
      toast(this.errorText(e), "error");
      button.disabled = false;
    }
  }

  async end(room) {
    if (!(await confirmAction(t("staff.room.end.confirm", { title: room.title }), { danger: true }))) {
      return;
    }
    try {
      await this.call("DELETE", `/api/rooms/${encodeURIComponent(room.id)}`);
      await this.load();
    } catch (e) {
      toast(this.errorText(e), "error");
    }
  }
}
