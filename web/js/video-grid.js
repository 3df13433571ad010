/**
 * The grid of video tiles: one per participant with media (camera video and their
 * microphone audio in one `<video>`), one large tile per screen share, and the self
 * view (muted, mirrored). Tiles are kept across renders, so playback never restarts.
 *
 * Tile markup (stable for tests):
 * `<div class="tile" data-participant-id=ID data-source="camera"|"screen" data-role=ROLE
 * data-quality="good"|"fair"|"poor"|"unknown">` with a `<video>` inside; classes
 * `self`, `screen`, `speaking`, `video-off`, `muted`, `hand`, `network-paused` (with a
 * `.tile-network-paused` status saying so).
 *
 * @module video-grid
 */
import { t } from "./i18n.js";
import { ICONS } from "./icons.js";
import { SIDES, personRole } from "./roles.js";
import { h, initial } from "./ui.js";

/**
 * What one tile shows.
 * @typedef {object} TileSpec
 * @property {string} key unique: `${participantId}:${source}`
 * @property {import("./room-state.js").Participant} participant
 * @property {"camera"|"screen"} source
 * @property {boolean} self
 * @property {MediaStreamTrack|null} video
 * @property {MediaStreamTrack|null} audio
 * @property {boolean} videoOff the participant turned the camera off
 * @property {string[]} [unsupported] kinds ("audio", "video") of theirs this browser
 *   cannot decode (the server's `unavailable`): said on the tile
 * @property {boolean} [networkPaused] the server paused this picture because our link
 *   cannot take it (`video_paused`): said on the tile, the sound goes on
 */

export class VideoGrid extends EventTarget {
  /**
   * @param {HTMLElement} container `#video-grid`
   */
  constructor(container) {
    super();
    this.el = container;
    /** @type {Map<string, Tile>} */
    this.tiles = new Map();
    /** Tiles whose sound the browser refused to autoplay (needs a click). */
    this.blocked = new Set();
    /** The self view's video element (the preview stream is attached to it). */
    this.selfVideo = h("video", { id: "self-video", autoplay: true, playsinline: true });
    this.selfVideo.muted = true;
    /** @type {Map<string, import("./stats.js").Quality>} */
    this.quality = new Map();
    /** @type {Set<string>} participant ids speaking now */
    this.speaking = new Set();
  }

  /**
   * Show exactly these tiles, in this order.
   * @param {TileSpec[]} specs
   */
  render(specs) {
    const keep = new Set(specs.map((s) => s.key));
    for (const [key, tile] of this.tiles) {
      if (!keep.has(key)) {
        tile.destroy();
        this.tiles.delete(key);
        this.blocked.delete(key);
      }
    }
    const ordered = specs.map((spec) => {
      let tile = this.tiles.get(spec.key);
      if (!tile) {
        tile = new Tile(spec, spec.self && spec.source === "camera" ? this.selfVideo : null, () =>
          this._autoplayBlocked(spec.key),
        );
        this.tiles.set(spec.key, tile);
      }
      tile.update(spec, this.quality.get(spec.participant.id), this.speaking.has(spec.participant.id));
      return tile.el;
    });
    const current = [...this.el.children];
    if (current.length !== ordered.length || current.some((el, i) => el !== ordered[i])) {
      this.el.append(...ordered); // moves, keeps playback
    }
    const cameras = specs.filter((s) => s.source === "camera").length;
    this.el.dataset.count = String(ordered.length);
    this.el.dataset.cols = String(cameras <= 1 ? 1 : cameras <= 4 ? 2 : cameras <= 9 ? 3 : 4);
    this.el.dataset.screens = String(specs.length - cameras);
  }

  /** @param {Map<string, import("./stats.js").Quality>} quality */
  setQuality(quality) {
    this.quality = quality;
    for (const tile of this.tiles.values()) {
      if (tile.source === "camera") tile.setQuality(quality.get(tile.participantId));
    }
  }

  setSpeaking(participantId, speaking) {
    if (speaking) this.speaking.add(participantId);
    else this.speaking.delete(participantId);
    for (const tile of this.tiles.values()) {
      if (tile.participantId === participantId) tile.el.classList.toggle("speaking", speaking);
    }
  }

  /** Retry playback after a user gesture (autoplay with sound was refused). */
  resumePlayback() {
    for (const key of this.blocked) this.tiles.get(key)?.play();
    this.blocked.clear();
    this.dispatchEvent(new Event("autoplay"));
  }

  _autoplayBlocked(key) {
    this.blocked.add(key);
    this.dispatchEvent(new Event("autoplay"));
  }
}

class Tile {
  /**
   * @param {TileSpec} spec
   * @param {HTMLVideoElement|null} video an existing element to use (the self view)
   * @param {() => void} onBlocked
   */
  constructor(spec, video, onBlocked) {
    this.key = spec.key;
    this.participantId = spec.participant.id;
    this.source = spec.source;
    this.self = spec.self;
    this.onBlocked = onBlocked;
    /** Tracks on show, to notice changes. */
    this.tracks = [];
    this.video = video || h("video", { autoplay: true, playsinline: true });
    this.video.playsInline = true;
    // our own sound never plays back; a screen share has no sound
    this.video.muted = spec.self || spec.source === "screen";
    this.onTrackMute = () => this._paintVideo();
    this.video.addEventListener("resize", () => {
      const { videoWidth: w, videoHeight: hgt } = this.video;
      this.el.classList.toggle("portrait", w > 0 && hgt > w);
    });

    this.name = h("span.tile-name");
    this.badge = h("span.badge");
    this.micOff = h("span.tile-icon.tile-mic-off", { html: ICONS.micOff });
    this.hand = h("span.tile-icon.tile-hand", { html: ICONS.hand });
    this.qualityEl = h("span.tile-quality", { html: ICONS.signal });
    this.initial = h("span.tile-initial", { "aria-hidden": "true" });
    // presence `reconnecting`: their connection dropped, their seat is kept (a while)
    this.away = h("span.tile-away", { role: "status", hidden: true });
    // their codec is one this browser cannot decode: say so instead of a silent avatar
    this.unsupported = h("span.tile-unsupported", { role: "status", hidden: true });
    // our link cannot take their picture now: the server paused it, their voice goes on
    this.networkPaused = h("span.tile-network-paused", { role: "status", hidden: true });
    this.el = h(
      "div.tile",
      {
        dataset: { participantId: spec.participant.id, source: spec.source },
        class: [spec.self ? "self" : "", spec.source === "screen" ? "screen" : ""].join(" ").trim(),
        role: "group",
      },
      this.video,
      h("div.tile-avatar", {}, this.initial),
      h("div.tile-top", {}, this.hand, spec.source === "camera" ? this.qualityEl : null),
      this.away,
      this.unsupported,
      this.networkPaused,
      // the role comes from the participant's token, next to every name (never the name)
      h("div.tile-bottom", {}, this.micOff, this.name, this.badge),
    );
    if (spec.self && spec.source === "camera") this.el.id = "self-tile";
  }

  /**
   * @param {TileSpec} spec
   * @param {import("./stats.js").Quality} [quality]
   * @param {boolean} [speaking]
   */
  update(spec, quality, speaking = false) {
    const p = spec.participant;
    this.spec = spec;
    const el = this.el;
    el.dataset.role = p.role;
    el.classList.toggle("speaking", speaking && this.source === "camera");
    const screen = this.source === "screen";
    const name = screen
      ? t(spec.self ? "tile.screen.self" : "tile.screen", { name: p.name })
      : spec.self
        ? `${p.name}${t("room.you")}`
        : p.name;
    this.name.textContent = name;
    el.setAttribute("aria-label", t("tile.label", { name, role: personRole(p) }));
    this.initial.textContent = initial(p.name);
    const side = p.role === "party" && SIDES.includes(p.side || "") ? ` side-${p.side}` : "";
    this.badge.className = `badge role-${p.role}${side}`;
    this.badge.textContent = personRole(p);

    const muted = !screen && !!p.muted?.audio;
    el.classList.toggle("muted", muted);
    this.micOff.hidden = !muted;
    const mutedKey = p.muted_by_mediator ? "room.status.muted_by_mediator" : "room.status.muted";
    this.micOff.title = muted ? t(mutedKey) : "";
    const hand = !screen && !!p.hand_raised;
    el.classList.toggle("hand", hand);
    this.hand.hidden = !hand;
    this.hand.title = hand ? t("room.status.hand") : "";
    const away = !spec.self && p.presence === "reconnecting";
    el.classList.toggle("reconnecting", away);
    this.away.hidden = !away;
    this.away.textContent = away ? t("room.status.reconnecting") : "";
    const kinds = new Set(spec.unsupported || []);
    const which = kinds.size > 1 ? "both" : kinds.has("video") ? "video" : kinds.has("audio") ? "audio" : "";
    el.classList.toggle("unsupported", !!which);
    this.unsupported.hidden = !which;
    this.unsupported.textContent = which ? t(`tile.unsupported.${which}`) : "";
    const paused = !!spec.networkPaused && !which;
    el.classList.toggle("network-paused", paused);
    this.networkPaused.hidden = !paused;
    this.networkPaused.textContent = paused ? t("tile.network_paused") : "";

    if (!this.self || screen) this._setTracks([spec.video, spec.audio].filter(Boolean));
    this._paintVideo();
    this.setQuality(quality);
  }

  /** @param {import("./stats.js").Quality} [q] */
  setQuality(q) {
    if (this.source !== "camera") return;
    const level = q?.level || "unknown";
    this.el.dataset.quality = level;
    const label = t("quality.label", { level: t(`quality.${level}`) });
    const details = [];
    if (q?.loss != null) details.push(t("quality.loss", { value: (q.loss * 100).toFixed(1) }));
    if (q?.rtt != null) details.push(t("quality.rtt", { value: Math.round(q.rtt * 1000) }));
    if (q?.fps != null) details.push(t("quality.fps", { value: Math.round(q.fps) }));
    this.qualityEl.title = details.length ? `${label} (${details.join(", ")})` : label;
    this.qualityEl.setAttribute("aria-label", label);
    this.qualityEl.setAttribute("role", "img");
  }

  play() {
    this.video.play().catch((e) => {
      if (e?.name === "NotAllowedError") this.onBlocked();
    });
  }

  destroy() {
    this._setTracks([]);
    this.el.remove();
  }

  /** Show these remote tracks (a new MediaStream when the set changes). */
  _setTracks(tracks) {
    const same = tracks.length === this.tracks.length && tracks.every((tr, i) => tr === this.tracks[i]);
    if (same) return;
    for (const tr of this.tracks) {
      tr.removeEventListener("mute", this.onTrackMute);
      tr.removeEventListener("unmute", this.onTrackMute);
    }
    this.tracks = tracks;
    for (const tr of tracks) {
      tr.addEventListener("mute", this.onTrackMute);
      tr.addEventListener("unmute", this.onTrackMute);
    }
    this.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (tracks.length) this.play();
  }

  /** Hide the video (show the initial) when there is no picture to show. */
  _paintVideo() {
    const spec = this.spec;
    if (!spec) return;
    let off;
    if (this.self && this.source === "camera") off = spec.videoOff || !spec.video;
    else off = spec.videoOff || !spec.video || spec.video.muted || spec.video.readyState !== "live";
    this.el.classList.toggle("video-off", off);
  }
}
