/**
 * The minimal in-room view: participants with role badges and hand/mute indicators,
 * the participant's own controls (mute, camera, raise hand, leave), and for mediators
 * the lobby (admit/deny), per-participant mute/remove, lock and end-room.
 *
 * It keeps the room state from the signalling notifications and re-renders on change.
 * The full video room is a later piece of work; this view shows only the self view.
 *
 * @module room-view
 */
import { t, onLangChange } from "./i18n.js";
import { ICONS } from "./icons.js";
import { h, toast, confirmAction } from "./ui.js";

/**
 * @typedef {object} Participant
 * @property {string} id
 * @property {string} name
 * @property {string} role
 * @property {"lobby"|"joined"} status
 * @property {{audio: boolean, video: boolean}} muted
 * @property {boolean} muted_by_mediator
 * @property {boolean} unmute_requested
 * @property {boolean} hand_raised
 * @property {number} joined_at
 */

const ROLE_ORDER = { mediator: 0, party: 1, expert: 2, observer: 3, recorder: 4 };
/** Roles that may send raise_hand / set_muted (see the permission matrix). */
const SPEAKING_ROLES = new Set(["mediator", "party", "expert"]);

/** Translated role name. */
export function roleLabel(role) {
  const key = `role.${role}`;
  const s = t(key);
  return s === key ? role : s;
}

/** Role badge element. */
export function roleBadge(role) {
  return h("span.badge", { class: `role-${role}`, text: roleLabel(role) });
}

/** Translated text for a request error code, falling back to the server's message. */
export function errorText(code, message) {
  const key = `reason.${code}`;
  const s = t(key);
  if (s !== key) return s;
  return message || t("reason.unknown", { code });
}

export class RoomView {
  /**
   * @param {object} opts
   * @param {import("./signalling.js").Signalling} opts.signalling
   * @param {import("./media-preview.js").MediaPreview} opts.preview
   * @param {() => void} opts.onLeave called when the user asks to leave
   */
  constructor({ signalling, preview, onLeave }) {
    this.sig = signalling;
    this.preview = preview;
    this.onLeave = onLeave;
    /** @type {Participant|null} */
    this.self = null;
    /** @type {any} */
    this.room = null;
    /** @type {Map<string, Participant>} */
    this.participants = new Map();
    /** @type {Participant[]} */
    this.lobby = [];
    /** Requests in flight, so a double click sends once (buttons stay enabled: focus). */
    this.busy = new Set();

    this.el = {
      title: document.getElementById("room-view-title"),
      locked: document.getElementById("room-locked-badge"),
      list: document.getElementById("participant-list"),
      count: document.getElementById("participant-count"),
      mediatorPanel: document.getElementById("mediator-panel"),
      lobbyList: document.getElementById("lobby-list"),
      lobbyCount: document.getElementById("lobby-count"),
      lockButton: document.getElementById("lock-button"),
      endButton: document.getElementById("end-button"),
      micButton: document.getElementById("mic-button"),
      camButton: document.getElementById("cam-button"),
      handButton: document.getElementById("hand-button"),
      leaveButton: document.getElementById("leave-button"),
      banner: document.getElementById("room-banner"),
      selfVideo: document.getElementById("self-video"),
      selfName: document.getElementById("self-name"),
      selfTile: document.getElementById("self-tile"),
    };

    this.el.micButton.addEventListener("click", () => this.toggleMute("audio"));
    this.el.camButton.addEventListener("click", () => this.toggleMute("video"));
    this.el.handButton.addEventListener("click", () => this.toggleHand());
    this.el.leaveButton.addEventListener("click", () => this.onLeave());
    this.el.lockButton.addEventListener("click", () => this.toggleLock());
    this.el.endButton.addEventListener("click", () => this.endRoom());

    const s = this.sig;
    s.on("room_state", (p) => this.onRoomState(p));
    s.on("participant_joined", ({ participant }) => this.upsert(participant));
    s.on("participant_updated", ({ participant }) => this.upsert(participant));
    s.on("participant_left", ({ participant_id }) => {
      this.participants.delete(participant_id);
      this.render();
    });
    s.on("lobby_updated", ({ lobby }) => {
      this.lobby = Array.isArray(lobby) ? lobby : [];
      this.render();
    });
    s.on("room_updated", ({ room }) => {
      if (room) this.room = { ...this.room, ...room };
      this.render();
    });
    s.on("unmute_requested", ({ track }) => {
      if (this.self) this.self.unmute_requested = true;
      if (track !== "video") this.showBanner("room.unmute_requested", true);
      this.render();
    });
    s.on("request_error", ({ event, error, message }) => {
      console.warn(`request ${event} refused: ${error} ${message}`);
    });

    onLangChange(() => this.render());
    preview.attach(this.el.selfVideo);
    preview.addEventListener("statechange", () => {
      this.render();
      this.muteMissingDevices();
    });
  }

  get isMediator() {
    return this.self?.role === "mediator";
  }

  /** @param {{room: any, self: Participant, participants: Participant[], lobby: Participant[]}} p */
  onRoomState({ room, self, participants, lobby }) {
    this.room = room;
    this.self = self;
    this.participants = new Map();
    for (const p of participants || []) this.participants.set(p.id, p);
    if (self) this.participants.set(self.id, self);
    this.lobby = lobby || [];
    this.applySelfMute();
    this.render();
    this.muteMissingDevices();
  }

  /**
   * With no microphone (or camera) here, tell the server we are muted, so the others'
   * participant lists do not show us as able to speak (or be seen).
   */
  async muteMissingDevices() {
    if (!this.self || !SPEAKING_ROLES.has(this.self.role)) return;
    if (["idle", "starting"].includes(this.preview.status)) return; // not settled yet
    for (const track of ["audio", "video"]) {
      if (!this.preview.has(track) && !this.self.muted?.[track]) {
        const ack = await this.send(`mute-${track}`, "set_muted", { track, muted: true });
        if (!ack) continue; // already in flight
        if (ack.ok && this.self) {
          this.self = { ...this.self, muted: { ...this.self.muted, [track]: true } };
          this.participants.set(this.self.id, this.self);
          this.render();
        }
      }
    }
  }

  /** @param {Participant} p */
  upsert(p) {
    if (!p?.id) return;
    if (p.status === "lobby") return; // lobby people come through lobby_updated
    this.participants.set(p.id, p);
    if (this.self && p.id === this.self.id) {
      const wasMutedByMediator = this.self.muted_by_mediator;
      this.self = p;
      this.applySelfMute();
      if (p.muted_by_mediator && !wasMutedByMediator) this.showBanner("room.muted_by_mediator");
      if (!p.muted_by_mediator && !p.unmute_requested && this.bannerKey === "room.muted_by_mediator") {
        this.hideBanner();
      }
    }
    this.render();
  }

  /** Keep the local tracks in step with the server's mute state. */
  applySelfMute() {
    if (!this.self) return;
    this.preview.setEnabled("audio", !this.self.muted?.audio);
    this.preview.setEnabled("video", !this.self.muted?.video);
  }

  // ---- requests ----

  async send(key, event, payload) {
    if (this.busy.has(key)) return null;
    this.busy.add(key);
    try {
      const ack = await this.sig.request(event, payload);
      if (!ack.ok) toast(errorText(ack.error, ack.message), "error");
      return ack;
    } finally {
      this.busy.delete(key);
    }
  }

  async toggleMute(track) {
    if (!this.self) return;
    const muted = !this.self.muted?.[track];
    const ack = await this.send(`mute-${track}`, "set_muted", { track, muted });
    if (ack?.ok && this.self) {
      // the participant_updated that follows confirms it; apply now for responsiveness
      this.self = { ...this.self, muted: { ...this.self.muted, [track]: muted } };
      if (!muted) this.self.unmute_requested = false;
      this.participants.set(this.self.id, this.self);
      this.applySelfMute();
      if (!muted && track === "audio") this.hideBanner();
      this.render();
    }
  }

  async toggleHand() {
    if (!this.self) return;
    await this.send("hand", "raise_hand", { raised: !this.self.hand_raised });
  }

  async toggleLock() {
    await this.send("lock", "lock", { locked: !this.room?.locked });
  }

  async endRoom() {
    if (await confirmAction(t("room.confirm.end"), { danger: true })) {
      await this.send("end", "end_room", {});
    }
  }

  async admit(p) {
    await this.send(`admit-${p.id}`, "admit", { participant_id: p.id });
  }

  async deny(p) {
    if (await confirmAction(t("room.confirm.deny", { name: p.name }), { danger: true })) {
      await this.send(`deny-${p.id}`, "deny", { participant_id: p.id });
    }
  }

  async mute(p) {
    await this.send(`pmute-${p.id}`, "mute", { participant_id: p.id, track: "audio" });
  }

  async askUnmute(p) {
    await this.send(`pmute-${p.id}`, "request_unmute", { participant_id: p.id, track: "audio" });
  }

  async remove(p) {
    if (await confirmAction(t("room.confirm.remove", { name: p.name }), { danger: true })) {
      await this.send(`remove-${p.id}`, "remove", { participant_id: p.id });
    }
  }

  // ---- banner ----

  showBanner(key, withUnmute = false) {
    const b = this.el.banner;
    this.bannerKey = key;
    b.replaceChildren(
      h("span.banner-icon", { html: ICONS.info }),
      h("span.banner-text", { "data-i18n": key, text: t(key) }),
    );
    if (withUnmute) {
      b.append(
        h("button.btn.small.primary", {
          type: "button",
          "data-i18n": "room.unmute_now",
          text: t("room.unmute_now"),
          on: { click: () => this.toggleMute("audio") },
        }),
      );
    }
    b.hidden = false;
  }

  hideBanner() {
    this.bannerKey = "";
    this.el.banner.hidden = true;
    this.el.banner.replaceChildren();
  }

  // ---- rendering ----

  render() {
    if (!this.self) return;
    const { el } = this;
    el.title.textContent = this.room?.title || "";
    el.locked.hidden = !this.room?.locked;

    // own controls
    const me = this.self;
    const speaks = SPEAKING_ROLES.has(me.role);
    const micMuted = !!me.muted?.audio;
    const camMuted = !!me.muted?.video;
    const locked = me.muted_by_mediator && !me.unmute_requested;
    setToggle(el.micButton, micMuted ? ICONS.micOff : ICONS.mic,
      t(micMuted ? "room.mic.unmute" : "room.mic.mute"), micMuted);
    el.micButton.hidden = !speaks;
    const hasMic = this.preview.has("audio");
    const hasCam = this.preview.has("video");
    el.micButton.disabled = !hasMic || (micMuted && locked);
    setToggle(el.camButton, camMuted ? ICONS.camOff : ICONS.cam,
      t(camMuted ? "room.cam.on" : "room.cam.off"), camMuted);
    el.camButton.hidden = !speaks;
    el.camButton.disabled = !hasCam;
    setToggle(el.handButton, ICONS.hand,
      t(me.hand_raised ? "room.hand.lower" : "room.hand.raise"), !!me.hand_raised);
    el.handButton.hidden = !speaks;
    el.handButton.classList.toggle("raised", !!me.hand_raised);
    el.selfName.textContent = `${me.name}${t("room.you")}`;
    el.selfTile.classList.toggle("cam-off", camMuted || !hasCam);

    // participants
    const people = [...this.participants.values()].sort(byRoleThenTime);
    el.count.textContent = String(people.length);
    replaceItems(el.list, people.map((p) => this.participantItem(p)));

    // mediator panel
    el.mediatorPanel.hidden = !this.isMediator;
    if (this.isMediator) {
      el.lobbyCount.textContent = String(this.lobby.length);
      if (this.lobby.length === 0) {
        el.lobbyList.replaceChildren(h("li.empty", { text: t("room.lobby.empty") }));
      } else {
        replaceItems(el.lobbyList, this.lobby.map((p) => this.lobbyItem(p)));
      }
      const isLocked = !!this.room?.locked;
      setToggle(el.lockButton, isLocked ? ICONS.unlock : ICONS.lock,
        t(isLocked ? "room.unlock" : "room.lock"), isLocked);
      setToggle(el.endButton, ICONS.end, t("room.end"), false);
    }
  }

  /** @param {Participant} p */
  participantItem(p) {
    const isSelf = p.id === this.self?.id;
    const status = h("span.p-status");
    if (p.hand_raised) {
      status.append(h("span.indicator.hand", { title: t("room.status.hand"), html: ICONS.hand },
        h("span.sr-only", { text: t("room.status.hand") })));
    }
    if (p.muted?.audio) {
      const key = p.muted_by_mediator ? "room.status.muted_by_mediator" : "room.status.muted";
      status.append(h("span.indicator.muted", { title: t(key), html: ICONS.micOff },
        h("span.sr-only", { text: t(key) })));
    }
    if (p.muted?.video) {
      status.append(h("span.indicator.cam-off", { title: t("room.status.cam_off"), html: ICONS.camOff },
        h("span.sr-only", { text: t("room.status.cam_off") })));
    }

    let actions = null;
    if (this.isMediator && !isSelf) {
      actions = h("span.p-actions",
        {},
        p.muted?.audio
          ? h("button.btn.small", { type: "button", dataset: { action: "ask-unmute" },
              text: t("room.ask_unmute"), on: { click: () => this.askUnmute(p) } })
          : h("button.btn.small", { type: "button", dataset: { action: "mute" },
              text: t("room.mute"), on: { click: () => this.mute(p) } }),
        h("button.btn.small.danger-outline", { type: "button", dataset: { action: "remove" },
          text: t("room.remove"), on: { click: () => this.remove(p) } }),
      );
    }

    return h("li.participant", { dataset: { participantId: p.id, role: p.role }, class: isSelf ? "self" : "" },
      h("span.avatar", { "aria-hidden": "true", text: initial(p.name) }),
      h("span.p-main", {},
        h("span.p-name", { text: p.name }),
        isSelf ? h("span.p-you", { text: t("room.you") }) : null,
        roleBadge(p.role)),
      status,
      actions,
    );
  }

  /** @param {Participant} p */
  lobbyItem(p) {
    return h("li.participant.waiting", { dataset: { participantId: p.id, role: p.role } },
      h("span.avatar", { "aria-hidden": "true", text: initial(p.name) }),
      h("span.p-main", {}, h("span.p-name", { text: p.name }), roleBadge(p.role)),
      h("span.p-actions", {},
        h("button.btn.small.primary", { type: "button", dataset: { action: "admit" },
          text: t("room.admit"), on: { click: () => this.admit(p) } }),
        h("button.btn.small.danger-outline", { type: "button", dataset: { action: "deny" },
          text: t("room.deny"), on: { click: () => this.deny(p) } }),
      ),
    );
  }
}

/**
 * Put an icon and a label in a toggle button. The label names the action the button
 * performs now ("Unmute microphone"), so no aria-pressed on top of it.
 */
function setToggle(button, icon, label, on) {
  button.innerHTML = icon; // constant markup
  button.append(h("span.label", { text: label }));
  button.classList.toggle("on", on);
}

/**
 * Replace a list's items, keeping keyboard focus on the same button of the same
 * participant when it is re-created.
 */
function replaceItems(list, items) {
  const active = document.activeElement;
  const li = active && list.contains(active) ? active.closest("li[data-participant-id]") : null;
  const id = li?.dataset.participantId;
  const action = active?.dataset?.action;
  list.replaceChildren(...items);
  if (id && action) {
    const again = list.querySelector(
      `li[data-participant-id="${CSS.escape(id)}"] [data-action="${CSS.escape(action)}"]`,
    );
    if (again && !again.disabled) again.focus();
  }
}

function initial(name) {
  const first = [...(name || "?").trim()][0] || "?";
  return first.toUpperCase();
}

function byRoleThenTime(a, b) {
  const r = (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9);
  return r || (a.joined_at || 0) - (b.joined_at || 0);
}

