/**
 * The video room: tiles for everyone with media (see {@link VideoGrid}), the participant
 * list, the control bar (microphone, camera, screen share, raise hand, devices, leave:
 * each with its label, a muted microphone or a raised hand in a strong colour with its
 * state in words, no screen sharing where the device cannot share), banners; it sets up
 * the panels (agreement, recording consent, chat, and for mediators the {@link MediatorConsole}
 * in the {@link ConsoleTabs}), each of which renders itself.
 *
 * The header (title, 录制中, signing banner) and the fixed control bar publish their
 * heights as `--room-header-h` / `--control-bar-h` on the root element: the page keeps
 * that much room free (padding, scroll-padding), so nothing scrolled into view lands
 * under them.
 *
 * It renders from the {@link RoomState} (re-rendering when it changes) and from the
 * {@link MediaSession}, which holds the media.
 *
 * @module room-view
 */
import { AgreementView } from "./agreement-view.js";
import { CaucusPanel } from "./caucus-panel.js";
import { ChatPanel } from "./chat-panel.js";
import { ConsoleTabs } from "./console-tabs.js";
import { errorText, t, onLangChange } from "./i18n.js";
import { ICONS } from "./icons.js";
import { MediaSession } from "./media-session.js";
import { MediatorConsole } from "./mediator-console.js";
import { RecordingConsent, recorderMark } from "./recording-consent.js";
import { Requests } from "./requests.js";
import { ROLE_ORDER, SPEAKING_ROLES, roleBadge } from "./roles.js";
import { ScreeningPanel } from "./screening-panel.js";
import { Separation } from "./separation.js";
import { fillDeviceSelect, h, initial, replaceItems, toast } from "./ui.js";
import { VideoGrid } from "./video-grid.js";

/** @typedef {import("./room-state.js").Participant} Participant */

const $ = (id) => document.getElementById(id);

export class RoomView {
  /**
   * @param {object} opts
   * @param {import("./signalling.js").Signalling} opts.signalling
   * @param {import("./room-state.js").RoomState} opts.room what we know about the room
   * @param {import("./media-preview.js").MediaPreview} opts.preview
   * @param {import("./media-session.js").MediaSession} opts.media the room's media, made
   *   and started on entering before this view (it answers the first subscriber offer
   *   while this view's modules load)
   * @param {string} opts.token this participant's invite token (mediators create invites with it)
   * @param {() => void} opts.onLeave called when the user asks to leave
   */
  constructor({ signalling, room, preview, media, token, onLeave }) {
    this.room = room;
    this.requests = new Requests(signalling);
    this.preview = preview;
    this.onLeave = onLeave;
    this.bannerKey = "";
    this.sharingBusy = false;

    this.el = {
      title: $("room-view-title"),
      locked: $("room-locked-badge"),
      sharing: $("room-sharing-badge"),
      list: $("participant-list"),
      count: $("participant-count"),
      micButton: $("mic-toggle"),
      camButton: $("camera-toggle"),
      screenButton: $("screen-toggle"),
      handButton: $("hand-button"),
      devicesButton: $("devices-button"),
      leaveButton: $("leave-button"),
      banner: $("room-banner"),
      soundBanner: $("sound-banner"),
      deviceDialog: /** @type {HTMLDialogElement} */ ($("device-dialog")),
      cameraSelect: $("room-camera-select"),
      micSelect: $("room-mic-select"),
    };

    this.grid = new VideoGrid($("video-grid"));
    // a caucus or a screen withholds someone's media: no frozen picture, no "poor" link
    this.separation = new Separation(signalling, room);
    this.separation.addEventListener("change", () => this.render());
    // the media was made (and entered) before this view: see join.js, `enterMedia`
    this.media = media;
    this.tabs = new ConsoleTabs(room);
    const panel = { room, requests: this.requests, token, tabs: this.tabs };
    this.agreement = new AgreementView(panel);
    this.console = new MediatorConsole(panel);
    this.caucus = new CaucusPanel({ signalling, room, requests: this.requests });
    this.screening = new ScreeningPanel({ signalling, room, requests: this.requests });
    this.recordingConsent = new RecordingConsent({ ...panel, onLeave });
    this.chat = new ChatPanel({ signalling, room, tabs: this.tabs });
    preview.attach(this.grid.selfVideo);

    this.media.addEventListener("tracks", () => this.render());
    this.media.addEventListener("screen", () => this.render());
    this.media.addEventListener("publisher", () => this.onPublisherState());
    this.media.addEventListener("speaking", (e) =>
      this.grid.setSpeaking(e.detail.participantId, e.detail.speaking),
    );
    this.media.addEventListener("quality", (e) => this.grid.setQuality(e.detail));
    this.grid.addEventListener("autoplay", () => {
      this.el.soundBanner.hidden = this.grid.blocked.size === 0;
    });

    const el = this.el;
    el.micButton.addEventListener("click", () => this.toggleMute("audio"));
    el.camButton.addEventListener("click", () => this.toggleMute("video"));
    el.screenButton.addEventListener("click", () => this.toggleScreen());
    el.handButton.addEventListener("click", () => this.toggleHand());
    el.devicesButton.addEventListener("click", () => this.openDevices());
    el.leaveButton.addEventListener("click", () => this.onLeave());
    el.soundBanner.querySelector("button").addEventListener("click", () => this.grid.resumePlayback());
    el.cameraSelect.addEventListener("change", (e) => this.switchDevice("video", e.target.value));
    el.micSelect.addEventListener("change", (e) => this.switchDevice("audio", e.target.value));

    room.watch(["summary", "self", "participants"], (change) => this.onChange(change));
    room.addEventListener("unmute-requested", (e) => {
      if (e.detail.track !== "video") this.showBanner("room.unmute_requested", true);
    });

    onLangChange(() => this.render());
    publishHeight($("room-header"), "--room-header-h");
    publishHeight($("control-bar"), "--control-bar-h");
    preview.addEventListener("statechange", () => {
      this.render();
      this.muteMissingDevices();
    });
    preview.addEventListener("devicechange", () => this.renderDevices());
  }

  /** @param {import("./room-state.js").Change} change */
  onChange({ parts, previous, entered }) {
    const self = this.room.self;
    if (entered || parts.has("self")) this.applySelfMute();
    // (entering: the media started already, see the constructor)
    if (!entered && self && parts.has("self")) {
      const wasMutedByMediator = previous.self?.muted_by_mediator;
      if (self.muted_by_mediator && !wasMutedByMediator) this.showBanner("room.muted_by_mediator");
      if (!self.muted_by_mediator && !self.unmute_requested && this.bannerKey === "room.muted_by_mediator") {
        this.hideBanner();
      }
    }
    this.render();
    if (entered) this.muteMissingDevices();
  }

  /**
   * Whether someone's camera picture should be arriving (on, and not withheld from this
   * page by a caucus or a screen): the quality monitor's question.
   * @param {string} id a participant id
   */
  expectVideo(id) {
    return !this.room.participants.get(id)?.muted?.video && !this.separation.withholds(id, "video");
  }

  /** Leave the room's media (the page shows a final screen). */
  stop() {
    this.media.stop();
    if (this.el.deviceDialog.open) this.el.deviceDialog.close();
  }

  /**
   * With no microphone (or camera) here, tell the server we are muted, so the others'
   * participant lists do not show us as able to speak (or be seen).
   */
  async muteMissingDevices() {
    const room = this.room;
    if (!room.speaks) return;
    if (["idle", "starting"].includes(this.preview.status)) return; // not settled yet
    for (const track of ["audio", "video"]) {
      if (!this.preview.has(track) && !room.self.muted?.[track]) {
        const ack = await this.requests.send(`mute-${track}`, "set_muted", { track, muted: true });
        if (!ack) continue; // already in flight
        if (ack.ok && room.self) room.patchSelf({ muted: { ...room.self.muted, [track]: true } });
      }
    }
  }

  /**
   * Keep the local tracks in step with the server's mute state: a muted microphone's
   * track is disabled (the sender sends silence), a camera turned off sends black.
   */
  applySelfMute() {
    const self = this.room.self;
    if (!self) return;
    this.preview.setEnabled("audio", !self.muted?.audio);
    this.preview.setEnabled("video", !self.muted?.video);
  }

  onPublisherState() {
    const pub = this.media.publisher;
    if (pub?.state === "failed") {
      const code = pub.lastError?.error || "unknown";
      toast(t("media.publish_failed", { reason: errorText(code, pub.lastError?.message) }), "error");
    }
    this.render();
  }

  // ---- requests ----

  async toggleMute(track) {
    const room = this.room;
    if (!room.self) return;
    const muted = !room.self.muted?.[track];
    if (muted) {
      // Privacy first: stop sending at once, not after the server's answer (and stay
      // muted even if the request fails).
      room.patchSelf({ muted: { ...room.self.muted, [track]: true } });
    }
    const ack = await this.requests.send(`mute-${track}`, "set_muted", { track, muted });
    if (ack?.ok && room.self) {
      // the participant_updated that follows confirms it; apply now for responsiveness
      const change = { muted: { ...room.self.muted, [track]: muted } };
      if (!muted && track === "audio") change.unmute_requested = false;
      room.patchSelf(change);
      if (!muted && track === "audio") this.hideBanner();
    }
  }

  async toggleScreen() {
    if (this.sharingBusy) return;
    this.sharingBusy = true;
    this.el.screenButton.disabled = true;
    try {
      if (this.media.screenTrack) {
        await this.media.stopScreenShare();
      } else {
        const result = await this.media.startScreenShare();
        if (result === "failed") toast(t("media.screen_failed"), "error");
      }
    } finally {
      this.sharingBusy = false;
      this.el.screenButton.disabled = false;
      this.render();
    }
  }

  async toggleHand() {
    if (!this.room.self) return;
    await this.requests.send("hand", "raise_hand", { raised: !this.room.self.hand_raised });
  }

  openDevices() {
    this.renderDevices();
    const d = this.el.deviceDialog;
    if (typeof d.showModal === "function" && !d.open) d.showModal();
  }

  async switchDevice(kind, deviceId) {
    const ok = await this.media.switchDevice(kind, deviceId);
    if (!ok) toast(t("media.device_failed"), "error");
    this.renderDevices();
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
          id: "unmute-now",
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
    const { el, room } = this;
    if (!room.self) return;
    el.title.textContent = room.summary?.title || "";
    el.locked.hidden = !room.summary?.locked;
    el.sharing.hidden = !this.media.screenTrack;
    this.renderControls();
    this.renderTiles();

    const people = [...room.participants.values()].sort(byRoleThenTime);
    el.count.textContent = String(people.length);
    replaceItems(el.list, people.map((p) => this.participantItem(p)));
  }

  renderControls() {
    const { el } = this;
    const me = this.room.self;
    const speaks = this.room.speaks;
    const micMuted = !!me.muted?.audio;
    const camMuted = !!me.muted?.video;
    const lockedByMediator = me.muted_by_mediator && !me.unmute_requested;
    const hasMic = this.preview.has("audio");
    const hasCam = this.preview.has("video");
    setToggle(el.micButton, micMuted ? ICONS.micOff : ICONS.mic,
      t(micMuted ? "room.mic.unmute" : "room.mic.mute"), micMuted, "room.state.mic_off");
    el.micButton.hidden = !speaks;
    el.micButton.disabled = !hasMic || (micMuted && lockedByMediator);
    el.micButton.title = micMuted && lockedByMediator ? t("room.status.muted_by_mediator") : "";
    setToggle(el.camButton, camMuted ? ICONS.camOff : ICONS.cam,
      t(camMuted ? "room.cam.on" : "room.cam.off"), camMuted, "room.state.cam_off");
    el.camButton.hidden = !speaks;
    el.camButton.disabled = !hasCam;
    const sharing = !!this.media.screenTrack;
    setToggle(el.screenButton, sharing ? ICONS.screenOff : ICONS.screen,
      t(sharing ? "room.screen.stop" : "room.screen.start"), sharing, "room.state.sharing");
    el.screenButton.hidden = !speaks || !MediaSession.canShareScreen();
    setToggle(el.handButton, ICONS.hand,
      t(me.hand_raised ? "room.hand.lower" : "room.hand.raise"), !!me.hand_raised, "room.state.hand");
    el.handButton.hidden = !speaks;
    setToggle(el.devicesButton, ICONS.settings, t("room.devices"), false);
    el.devicesButton.hidden = !speaks;
    setToggle(el.leaveButton, ICONS.leave, t("room.leave"), false);
  }

  renderTiles() {
    const me = this.room.self;
    const remote = this.media.remoteTracks;
    /** @type {Map<string, {camera?: MediaStreamTrack, microphone?: MediaStreamTrack, screen?: MediaStreamTrack}>} */
    const byPerson = new Map();
    for (const r of remote) {
      if (!byPerson.has(r.participantId)) byPerson.set(r.participantId, {});
      byPerson.get(r.participantId)[r.source] = r.track;
    }
    /** @type {import("./video-grid.js").TileSpec[]} */
    const screens = [];
    const cameras = [];
    /** @type {Map<string, Set<string>>} participant id -> kinds we cannot receive */
    const cannot = new Map();
    for (const u of this.media.unavailable) {
      if (!cannot.has(u.participant_id)) cannot.set(u.participant_id, new Set());
      cannot.get(u.participant_id).add(u.kind);
    }
    const people = [...this.room.participants.values()].sort(byRoleThenTime);
    for (const p of people) {
      if (p.id === me.id) continue;
      const tracks = byPerson.get(p.id) || {};
      // people who publish get a tile even before their media arrives
      if (SPEAKING_ROLES.has(p.role) || tracks.camera || tracks.microphone) {
        cameras.push({
          key: `${p.id}:camera`, participant: p, source: "camera", self: false,
          video: tracks.camera || null, audio: tracks.microphone || null,
          videoOff: !!p.muted?.video || this.separation.withholds(p.id, "video"),
          unsupported: [...(cannot.get(p.id) || [])],
          networkPaused: this.media.pausedFor(p.id, "camera"),
        });
      }
      if (tracks.screen && !this.separation.withholds(p.id, "video")) {
        screens.push({
          key: `${p.id}:screen`, participant: p, source: "screen", self: false,
          video: tracks.screen, audio: null, videoOff: false,
          networkPaused: this.media.pausedFor(p.id, "screen"),
        });
      }
    }
    if (this.media.screenTrack) {
      screens.push({
        key: `${me.id}:screen`, participant: me, source: "screen", self: true,
        video: this.media.screenTrack, audio: null, videoOff: false,
      });
    }
    if (this.room.speaks) {
      cameras.push({
        key: `${me.id}:camera`, participant: me, source: "camera", self: true,
        video: this.preview.has("video") ? this.preview.stream.getVideoTracks()[0] : null,
        audio: null, videoOff: !!me.muted?.video,
      });
    }
    this.grid.render([...screens, ...cameras]);
  }

  renderDevices() {
    fillDeviceSelect(this.el.cameraSelect, this.preview.devices.video, this.preview.videoDeviceId);
    fillDeviceSelect(this.el.micSelect, this.preview.devices.audio, this.preview.audioDeviceId);
  }

  /** @param {Participant} p */
  participantItem(p) {
    const isSelf = p.id === this.room.self?.id;
    const status = h("span.p-status", {}, recorderMark(p));
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
    return h("li.participant", { dataset: { participantId: p.id, role: p.role }, class: isSelf ? "self" : "" },
      h("span.avatar", { "aria-hidden": "true", text: initial(p.name) }),
      h("span.p-main", {},
        h("span.p-name", { text: p.name }),
        isSelf ? h("span.p-you", { text: t("room.you") }) : null,
        roleBadge(p)),
      status,
      this.console.participantActions(p),
    );
  }
}

/**
 * Put an icon and a label in a toggle button. The label names the action the button
 * performs now ("Unmute"), so no aria-pressed on top of it; while the toggle is on
 * (muted, hand raised, sharing) the state is also said in words (`.ctl-state`, e.g.
 * 已静音) and the button is filled with a strong colour (css/app.css).
 * @param {HTMLElement} button
 * @param {string} icon
 * @param {string} label
 * @param {boolean} on
 * @param {string} [stateKey] the i18n key of the state shown while on
 */
function setToggle(button, icon, label, on, stateKey) {
  button.innerHTML = icon; // constant markup
  button.append(h("span.label", { text: label }));
  const state = on && stateKey ? t(stateKey) : "";
  if (state) button.prepend(h("span.ctl-state", { text: state }));
  button.setAttribute("aria-label", state ? t("room.control.with_state", { label, state }) : label);
  button.classList.toggle("on", on);
  button.dataset.state = on ? "on" : "off";
}

/**
 * Keep a CSS custom property on the root element equal to an element's height (0 when
 * it is hidden), as its content and the window change.
 * @param {HTMLElement} el
 * @param {string} property
 */
function publishHeight(el, property) {
  const root = document.documentElement;
  const update = () => root.style.setProperty(property, `${Math.ceil(el.offsetHeight)}px`);
  new ResizeObserver(update).observe(el);
  update();
}

function byRoleThenTime(a, b) {
  const r = (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9);
  return r || (a.joined_at || 0) - (b.joined_at || 0);
}
