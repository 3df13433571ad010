/**
 * The mediator's console on the room page, in the tabs of {@link ConsoleTabs}: the lobby
 * (admit / deny one, or admit all at once: `admit_all`), per-participant mute /
 * ask-to-speak / to the lobby (send_to_lobby) / remove; lock and end the room (in the
 * room's header); and new invite
 * links for 申请人, 被申请人, another party or an expert (`POST /api/rooms/{id}/invites`
 * with the mediator's own token; a party's side goes on the invite, so it is never
 * typed again). It hosts the agreement editor ({@link AgreementPanel}) and the
 * recording controls ({@link RecordingControls}). It renders from the
 * {@link RoomState} and renders itself.
 *
 * @module mediator-console
 */
import { AgreementPanel } from "./agreement-panel.js";
import { ApiError, createInvite } from "./api.js";
import { errorText, onLangChange, t } from "./i18n.js";
import { ICONS } from "./icons.js";
import { RecordingControls } from "./recording-controls.js";
import { SIDES, personRole, roleBadge } from "./roles.js";
import { charCount, confirmAction, h, initial, replaceItems, toast } from "./ui.js";

/** Invite links made here are valid for a day. */
const INVITE_EXPIRES_IN = 86400;
const NAME_MAX = 64;

const $ = (id) => document.getElementById(id);

export class MediatorConsole {
  /**
   * @param {object} opts
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./requests.js").Requests} opts.requests
   * @param {string} opts.token the mediator's invite token (for the REST API)
   * @param {import("./console-tabs.js").ConsoleTabs} opts.tabs
   */
  constructor({ room, requests, token, tabs }) {
    this.room = room;
    this.requests = requests;
    this.token = token;
    this.tabs = tabs;
    /** @type {import("./api.js").CreatedInvite|null} */
    this.lastInvite = null;
    this.el = {
      panel: $("mediator-panel"),
      actions: $("room-actions"),
      lobbyList: $("lobby-list"),
      lobbyCount: $("lobby-count"),
      lobbyAdmitAll: $("lobby-admit-all"),
      tabLobbyCount: $("tab-lobby-count"),
      lockButton: $("lock-button"),
      endButton: $("end-button"),
      inviteForm: $("invite-form"),
      inviteRole: $("invite-role"),
      inviteName: $("invite-name"),
      inviteCreate: $("invite-create"),
      inviteError: $("invite-error"),
      inviteResult: $("invite-result"),
      inviteFor: $("invite-for"),
      inviteUrl: $("invite-url"),
      inviteCopy: $("invite-copy"),
      alert: $("lobby-alert"),
      alertText: $("lobby-alert-text"),
      alertAdmit: $("lobby-alert-admit"),
      alertAdmitAll: $("lobby-alert-admit-all"),
      alertView: $("lobby-alert-view"),
    };
    this.agreementPanel = new AgreementPanel({ room, requests });
    this.recording = new RecordingControls({ room, requests, token });
    this.el.lockButton.addEventListener("click", () => this.toggleLock());
    this.el.endButton.addEventListener("click", () => this.endRoom());
    this.el.inviteForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.createInvite();
    });
    this.el.inviteCopy.addEventListener("click", () => this.copyInvite());
    this.el.inviteUrl.addEventListener("focus", () => this.el.inviteUrl.select());
    this.el.alertAdmit.addEventListener("click", () => {
      if (room.lobby.length === 1) this.admit(room.lobby[0]);
    });
    this.el.alertAdmitAll.addEventListener("click", () => this.admitAll());
    this.el.lobbyAdmitAll.addEventListener("click", () => this.admitAll());
    this.el.alertView.addEventListener("click", () => {
      this.tabs.show("people");
      this.el.panel.scrollIntoView({ behavior: "smooth", block: "start" });
      this.el.lobbyList.querySelector("button")?.focus({ preventScroll: true });
    });
    room.watch(["self", "lobby", "summary"], () => this.render());
    onLangChange(() => this.render());
  }

  /** Show or hide the console and refresh the lobby and the lock button. */
  render() {
    const { el, room } = this;
    const on = room.isMediator;
    el.panel.hidden = !on;
    el.actions.hidden = !on;
    el.alert.hidden = !on || room.lobby.length === 0;
    if (!on) return;
    const lobby = room.lobby;
    // on a phone the lobby list is far below the videos: say it at the top too
    if (lobby.length > 0) {
      el.alertText.textContent =
        lobby.length === 1
          ? t("lobby.alert.one", { name: lobby[0].name, role: personRole(lobby[0]) })
          : t("lobby.alert.many", { n: lobby.length });
      el.alertAdmit.hidden = lobby.length !== 1;
      el.alertAdmitAll.hidden = lobby.length < 2;
    }
    el.lobbyAdmitAll.hidden = lobby.length < 2;
    el.tabLobbyCount.hidden = lobby.length === 0;
    el.tabLobbyCount.textContent = String(lobby.length);
    el.lobbyCount.textContent = String(lobby.length);
    if (lobby.length === 0) {
      el.lobbyList.replaceChildren(h("li.empty", { text: t("room.lobby.empty") }));
    } else {
      replaceItems(el.lobbyList, lobby.map((p) => this.lobbyItem(p)));
    }
    const locked = !!room.summary?.locked;
    setButton(el.lockButton, locked ? ICONS.unlock : ICONS.lock, t(locked ? "room.unlock" : "room.lock"));
    el.lockButton.classList.toggle("on", locked);
    setButton(el.endButton, ICONS.end, t("room.end"));
    setButton(el.inviteCreate, ICONS.link, t("invite.create"));
    setButton(el.inviteCopy, ICONS.copy, t("invite.copy"));
    if (this.lastInvite) {
      el.inviteFor.textContent = t("invite.for", {
        name: this.lastInvite.name,
        role: personRole(this.lastInvite),
      });
    }
  }

  /**
   * The mediator's buttons for one participant in the room (none for yourself).
   * @param {import("./room-state.js").Participant} p
   * @returns {HTMLElement|null}
   */
  participantActions(p) {
    if (!this.room.isMediator || p.id === this.room.self?.id) return null;
    if (p.role === "recorder") return null; // stopped with the recording button
    if (p.role === "observer") {
      return h("span.p-actions", {}, this._removeButton(p));
    }
    const audioMuted = !!p.muted?.audio;
    return h(
      "span.p-actions",
      {},
      audioMuted
        ? h("button.btn.small", {
            type: "button",
            dataset: { action: "ask-unmute" },
            text: t("room.ask_unmute"),
            disabled: p.muted_by_mediator && p.unmute_requested ? true : undefined,
            on: { click: () => this.askUnmute(p) },
          })
        : h("button.btn.small", {
            type: "button",
            dataset: { action: "mute" },
            text: t("room.mute"),
            on: { click: () => this.mute(p) },
          }),
      p.role === "party" || p.role === "expert" ? this._lobbyButton(p) : null,
      this._removeButton(p),
    );
  }

  /** @param {import("./room-state.js").Participant} p */
  lobbyItem(p) {
    return h(
      "li.participant.waiting",
      { dataset: { participantId: p.id, role: p.role } },
      h("span.avatar", { "aria-hidden": "true", text: initial(p.name) }),
      h("span.p-main", {}, h("span.p-name", { text: p.name }), roleBadge(p)),
      h(
        "span.p-actions",
        {},
        h("button.btn.small.primary", {
          type: "button",
          dataset: { action: "admit" },
          text: t("room.admit"),
          on: { click: () => this.admit(p) },
        }),
        h("button.btn.small.danger-outline", {
          type: "button",
          dataset: { action: "deny" },
          text: t("room.deny"),
          on: { click: () => this.deny(p) },
        }),
      ),
    );
  }

  // ---- requests ----

  admit(p) {
    return this.requests.send(`admit-${p.id}`, "admit", { participant_id: p.id });
  }

  /** Everyone waiting, at once (as far as the room has places). */
  async admitAll() {
    const ack = await this.requests.send("admit-all", "admit_all", {});
    if (!ack?.ok) return;
    const n = ack.admitted?.length || 0;
    if (ack.waiting > 0) toast(t("room.admit_all.some", { n, left: ack.waiting }), "error");
    else if (n > 0) toast(t("room.admit_all.done", { n }));
  }

  async deny(p) {
    if (await confirmAction(t("room.confirm.deny", { name: p.name, role: personRole(p) }), { danger: true })) {
      await this.requests.send(`deny-${p.id}`, "deny", { participant_id: p.id });
    }
  }

  mute(p) {
    return this.requests.send(`pmute-${p.id}`, "mute", { participant_id: p.id, track: "audio" });
  }

  askUnmute(p) {
    return this.requests.send(`pmute-${p.id}`, "request_unmute", {
      participant_id: p.id,
      track: "audio",
    });
  }

  async remove(p) {
    if (await confirmAction(t("room.confirm.remove", { name: p.name, role: personRole(p) }), { danger: true })) {
      await this.requests.send(`remove-${p.id}`, "remove", { participant_id: p.id });
    }
  }

  toggleLock() {
    return this.requests.send("lock", "lock", { locked: !this.room.summary?.locked });
  }

  async endRoom() {
    if (await confirmAction(t("room.confirm.end"), { danger: true })) {
      await this.requests.send("end", "end_room", {});
    }
  }

  /** Create an invite link from the form and show it with a copy button. */
  async createInvite() {
    const { el } = this;
    const name = el.inviteName.value.trim().replace(/\s+/g, " ");
    const choice = el.inviteRole.value;
    const role = choice === "expert" ? "expert" : "party";
    const side = SIDES.includes(choice) ? choice : undefined;
    let errorKey = "";
    if (!name) errorKey = "invite.name.empty";
    else if (charCount(name) > NAME_MAX) errorKey = "join.name.long";
    this._showInviteError(errorKey);
    if (errorKey) {
      el.inviteName.focus();
      return;
    }
    const roomId = this.room.summary?.id;
    if (!roomId || el.inviteCreate.disabled) return;
    el.inviteCreate.disabled = true;
    try {
      this.lastInvite = await createInvite(this.token, roomId, {
        role,
        name,
        expires_in: INVITE_EXPIRES_IN,
        ...(side ? { side } : {}),
      });
      el.inviteUrl.value = this.lastInvite.url;
      el.inviteResult.hidden = false;
      el.inviteName.value = "";
      this.render();
      el.inviteUrl.focus({ preventScroll: true });
      el.inviteUrl.select();
      // the link and its copy button in view, above the control bar (scroll-padding)
      el.inviteResult.scrollIntoView({ block: "nearest" });
      if (role === "party") this.agreementPanel.refreshPrefill();
    } catch (e) {
      const code = e instanceof ApiError ? e.code : "unknown";
      this._showInviteError(null, errorText(code, e?.message));
    } finally {
      el.inviteCreate.disabled = false;
    }
  }

  /** Copy the invite link (the Clipboard API needs HTTPS; fall back to a selection). */
  async copyInvite() {
    const url = this.el.inviteUrl.value;
    if (!url) return;
    let copied = false;
    try {
      await navigator.clipboard.writeText(url);
      copied = true;
    } catch {
      this.el.inviteUrl.select();
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
    }
    toast(t(copied ? "invite.copied" : "invite.copy_failed"), copied ? "info" : "error");
  }

  _showInviteError(key, text = "") {
    const err = this.el.inviteError;
    err.hidden = !key && !text;
    if (key) err.dataset.i18n = key;
    else delete err.dataset.i18n;
    err.textContent = key ? t(key) : text;
    this.el.inviteName.setAttribute("aria-invalid", String(!!key));
  }

  /** @param {import("./room-state.js").Participant} p */
  async sendToLobby(p) {
    if (await confirmAction(t("room.confirm.send_to_lobby", { name: p.name, role: personRole(p) }))) {
      await this.requests.send(`lobby-${p.id}`, "send_to_lobby", { participant_id: p.id });
    }
  }

  _lobbyButton(p) {
    return h("button.btn.small", {
      type: "button",
      dataset: { action: "send-to-lobby" },
      text: t("room.send_to_lobby"),
      on: { click: () => this.sendToLobby(p) },
    });
  }

  _removeButton(p) {
    return h("button.btn.small.danger-outline", {
      type: "button",
      dataset: { action: "remove" },
      text: t("room.remove"),
      on: { click: () => this.remove(p) },
    });
  }
}

/** Icon + label in a button. */
function setButton(button, icon, label) {
  button.innerHTML = icon; // constant markup
  button.append(h("span.label", { text: label }));
}
