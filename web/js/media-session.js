/**
 * The media side of being in a room: the publisher and subscriber connections, the
 * screen share, device switches, the speaking detector and the quality monitor.
 * {@link MediaSession#start} runs on every `room_state` (entering, or re-entering after a
 * reconnect: the server then has fresh connections for us), {@link MediaSession#stop}
 * when the page leaves the room. A peer connection that fails (or stays disconnected for
 * {@link PC_DISCONNECTED_MS}) while the socket is up makes the signalling reconnect:
 * aiortc has no ICE restart, so coming back means new connections (room_state again).
 *
 * Events (an EventTarget):
 * - `tracks`: the remote tracks changed ({@link MediaSession#remoteTracks})
 * - `screen`: the own screen share started or stopped ({@link MediaSession#screenTrack})
 * - `publisher`: the publisher connection's state changed
 * - `speaking` (detail: {participantId, speaking})
 * - `quality` (detail: Map participantId -> Quality)
 *
 * @module media-session
 */
import { Publisher } from "./publisher.js";
import { SpeakingDetector } from "./speaking.js";
import { QualityMonitor } from "./stats.js";
import { Subscriber } from "./subscriber.js";

/** How long a peer connection may stay "disconnected" before we reconnect. */
export const PC_DISCONNECTED_MS = 4000;
const WATCH_EVERY_MS = 1000;
/** Longest the own publishing waits for the others' picture after the first answer. */
export const FLOWING_WAIT_MS = 1000;

export class MediaSession extends EventTarget {
  /**
   * @param {object} opts
   * @param {import("./signalling.js").Signalling} opts.signalling
   * @param {import("./media-preview.js").MediaPreview} opts.preview the join page's
   *   camera + microphone stream, which is what we publish
   * @param {(participantId: string) => boolean} opts.expectVideo whether someone's camera is on
   */
  constructor({ signalling, preview, expectVideo }) {
    super();
    this.sig = signalling;
    this.preview = preview;
    /** @type {Publisher|null} */
    this.publisher = null;
    /** @type {Subscriber|null} */
    this.subscriber = null;
    /** @type {MediaStreamTrack|null} */
    this.screenTrack = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {string|null} */
    this.selfId = null;
    this.active = false;
    /** @type {Promise<void>|null} the first answer taken (see {@link MediaSession#start}) */
    this.answered = null;
    /** @type {Promise<void>|null} the others' picture flows (see {@link MediaSession#start}) */
    this.flowing = null;

    this.speaking = new SpeakingDetector((participantId, speaking) =>
      this._emit("speaking", { participantId, speaking }),
    );
    this.quality = new QualityMonitor({
      publisherPc: () => this.publisher?.pc ?? null,
      subscriberPc: () => this.subscriber?.pc ?? null,
      remoteTracks: () => this.subscriber?.tracks ?? new Map(),
      selfId: () => this.selfId,
      cameraMid: () => this.publisher?.transceivers.get("camera")?.mid ?? null,
      expectVideo,
      onUpdate: (q) => this._emit("quality", q),
    });

    /** Every `subscriber_offer` this page received (for tests: none in the lobby). */
    this.offersReceived = 0;
    this.sig.on("subscriber_offer", (offer) => {
      this.offersReceived += 1;
      if (!this.active) return;
      if (!this.subscriber) this._newSubscriber();
      this.subscriber.handleOffer(offer);
    });
    /**
     * Publications the server paused for this browser because its link is congested
     * (`video_paused`, reason "network"): publication id -> {participant_id, source}.
     * Their sound still comes; the tile says why the picture stopped.
     * @type {Map<string, {participant_id: string, source: string}>}
     */
    this.pausedForNetwork = new Map();
    this.sig.on("video_paused", ({ publication_id, participant_id, source } = {}) => {
      if (typeof publication_id !== "string") return;
      this.pausedForNetwork.set(publication_id, { participant_id, source });
      this._emit("tracks");
    });
    this.sig.on("video_resumed", ({ publication_id } = {}) => {
      if (this.pausedForNetwork.delete(publication_id)) this._emit("tracks");
    });
    // someone cannot decode our camera's (or screen's) codec: send it in theirs too;
    // codec null: nobody needs it any more, stop sending it
    this.sig.on("backup_codec", ({ source, codec } = {}) => {
      if (!this.active) return;
      if (typeof codec === "string") this.publisher?.addBackup(source, codec);
      else if (codec === null) this.publisher?.removeBackup(source);
    });
    preview.addEventListener("statechange", () => this._syncDevices());
  }

  /**
   * Enter the room's media: answer the first subscriber offer (`room_state` carries it),
   * publish (unless `publish` is false: observers) and be ready for the server's next
   * subscriber offers.
   * @param {{iceServers?: RTCIceServer[], publish: boolean, selfId: string, offer?: object|null}} opts
   * @returns {Promise<void>|null} settled once the first answer was sent and acknowledged
   *   (or failed); null without an offer
   */
  start({ iceServers = [], publish, selfId, offer = null }) {
    this._closeConnections();
    this.active = true;
    this.iceServers = Array.isArray(iceServers) ? iceServers : [];
    this.selfId = selfId;
    this._watchConnections();
    this._newSubscriber();
    let answered = null;
    if (offer) {
      this.offersReceived += 1;
      answered = this.subscriber.handleOffer(offer);
    }
    this.answered = answered;
    /** Settles once the others' picture flows (see {@link MediaSession#_flowing}). */
    this.flowing = answered && this._flowing(answered);
    if (publish) {
      const pub = new Publisher({ signalling: this.sig, iceServers: this.iceServers });
      this.publisher = pub;
      pub.addEventListener("statechange", () => this._emit("publisher"));
      pub.addEventListener("trackended", (e) => {
        if (e.detail.source === "screen") this.stopScreenShare();
      });
      // The others' media first: the publisher's offer goes once the others' picture
      // flows (see {@link MediaSession#_flowing}), so that neither the browser nor the
      // server works on both connections at once while the first picture is on its way.
      pub.start(
        {
          camera: this._previewTrack("video"),
          microphone: this._previewTrack("audio"),
          screen: this.screenTrack,
        },
        this.flowing,
      );
    }
    // the level meters (an AudioContext to make) once the answer is on its way
    const self = publish ? () => this._previewTrack("audio") : () => null;
    const subscriber = this.subscriber;
    Promise.resolve(answered).then(() => {
      if (this.active && this.subscriber === subscriber) this.speaking.watch(selfId, self());
    });
    this.quality.start();
    this._emit("tracks");
    return answered;
  }

  /**
   * Settles once the first subscriber answer was taken and the subscriber connection is
   * connected with a remote picture arriving (a video track unmuted; none expected: the
   * connection alone), or failed, or {@link FLOWING_WAIT_MS} after the answer: the
   * server's loop sends the held keyframe then instead of negotiating our publisher.
   * @param {Promise<void>} answered
   */
  async _flowing(answered) {
    await answered;
    const sub = this.subscriber;
    const pc = sub?.pc;
    if (!pc || !this.active) return;
    const videos = [...sub.tracks.values()].filter((t) => t.kind === "video").map((t) => t.track);
    await new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("connectionstatechange", check);
        resolve();
      };
      const check = () => {
        const s = pc.connectionState;
        if (s === "failed" || s === "closed" || !this.active) return done();
        if (s === "connected" && (!videos.length || videos.some((t) => !t.muted))) done();
      };
      const timer = setTimeout(done, FLOWING_WAIT_MS);
      pc.addEventListener("connectionstatechange", check);
      for (const t of videos) t.addEventListener("unmute", check, { once: true });
      check();
    });
  }

  /** Leave the room's media: close both connections, stop the screen share. */
  stop() {
    this.active = false;
    clearInterval(this._watchdog);
    this._closeConnections();
    this.speaking.stop();
    this.quality.stop();
    if (this.screenTrack) {
      this.screenTrack.stop();
      this.screenTrack = null;
    }
  }

  /**
   * Whether the server paused this participant's `source` for our link.
   * @param {string} participantId
   * @param {string} source
   */
  pausedFor(participantId, source) {
    for (const p of this.pausedForNetwork.values()) {
      if (p.participant_id === participantId && p.source === source) return true;
    }
    return false;
  }

  /** Publications this browser cannot receive (see subscriber.js), as a list. */
  get unavailable() {
    return this.subscriber ? [...this.subscriber.unavailable.values()] : [];
  }

  /** @returns {import("./subscriber.js").RemoteTrack[]} */
  get remoteTracks() {
    return this.subscriber ? this.subscriber.list() : [];
  }

  /** Whether this browser can share its screen at all (phones cannot). */
  static canShareScreen() {
    if (typeof navigator.mediaDevices?.getDisplayMedia !== "function") return false;
    // Phones and tablets that define it still cannot share their screen: no button.
    const mobile = navigator.userAgentData?.mobile ?? /Android|iPhone|iPad|iPod|Mobile/i.test(navigator.userAgent);
    return !mobile;
  }

  /**
   * Ask the browser for a screen, window or tab and publish it as the "screen" source.
   * @returns {Promise<"ok"|"cancelled"|"failed">}
   */
  async startScreenShare() {
    if (this.screenTrack || !this.publisher) return "ok";
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: 15, max: 30 } },
        audio: false,
      });
    } catch (e) {
      console.warn("getDisplayMedia:", e);
      return e?.name === "NotAllowedError" || e?.name === "AbortError" ? "cancelled" : "failed";
    }
    const track = stream.getVideoTracks()[0];
    if (!track || !this.publisher) {
      stream.getTracks().forEach((tr) => tr.stop());
      return "failed";
    }
    this.screenTrack = track;
    this._emit("screen");
    await this.publisher.setTrack("screen", track);
    if (this.publisher?.state === "published") return "ok";
    if (this.screenTrack === track) await this.stopScreenShare(); // not published: undo
    return "failed";
  }

  /** Stop sharing: unpublish the screen (renegotiates) and stop the capture. */
  async stopScreenShare() {
    const track = this.screenTrack;
    if (!track) return;
    this.screenTrack = null;
    this._emit("screen");
    track.stop();
    await this.publisher?.setTrack("screen", null);
  }

  /**
   * Switch camera or microphone while in the room: the preview opens the new device and
   * the publisher replaces the sender's track (see {@link MediaSession#_syncDevices}).
   * @param {"audio"|"video"} kind
   * @param {string} deviceId
   */
  switchDevice(kind, deviceId) {
    return this.preview.switchDevice(kind, deviceId);
  }

  // ---- internals ----

  _newSubscriber() {
    const sub = new Subscriber({ signalling: this.sig, iceServers: this.iceServers });
    this.subscriber = sub;
    sub.addEventListener("change", () => {
      if (sub !== this.subscriber) return;
      // after the answer is sent (the change comes just before, in the same task)
      setTimeout(() => {
        if (sub === this.subscriber) this._watchRemoteAudio();
      }, 0);
      this._emit("tracks");
    });
  }

  /** Reconnect when a peer connection failed, or stayed disconnected too long. */
  _watchConnections() {
    clearInterval(this._watchdog);
    const since = new Map();
    this._watchdog = setInterval(() => {
      if (!this.active) return;
      for (const pc of [this.publisher?.pc, this.subscriber?.pc]) {
        const state = pc?.connectionState;
        if (state !== "disconnected") since.delete(pc);
        else if (!since.has(pc)) since.set(pc, Date.now());
        const stuck = since.has(pc) && Date.now() - since.get(pc) > PC_DISCONNECTED_MS;
        if (state === "failed" || stuck) {
          since.clear();
          this.sig.reconnect();
          return;
        }
      }
    }, WATCH_EVERY_MS);
  }

  _closeConnections() {
    this.pausedForNetwork.clear(); // a new subscriber connection starts unpaused
    this.publisher?.close();
    this.publisher = null;
    this.subscriber?.close();
    this.subscriber = null;
    for (const key of this.speaking.keys()) this.speaking.unwatch(key);
  }

  _previewTrack(kind) {
    const tr = this.preview.stream?.getTracks().find((t) => t.kind === kind);
    return tr && tr.readyState === "live" ? tr : null;
  }

  /** The preview's tracks changed (device switch, unplug): send the new ones. */
  _syncDevices() {
    const pub = this.publisher;
    if (!pub || !this.active) return;
    if (["idle", "starting"].includes(this.preview.status)) return; // not settled yet
    const mic = this._previewTrack("audio");
    const cam = this._previewTrack("video");
    if (pub.track("microphone") !== mic) pub.setTrack("microphone", mic);
    if (pub.track("camera") !== cam) pub.setTrack("camera", cam);
    if (this.selfId) this.speaking.watch(this.selfId, mic);
  }

  _watchRemoteAudio() {
    const mics = new Map();
    for (const t of this.remoteTracks) {
      if (t.source === "microphone") mics.set(t.participantId, t.track);
    }
    for (const key of this.speaking.keys()) {
      if (key !== this.selfId && !mics.has(key)) this.speaking.unwatch(key);
    }
    for (const [pid, track] of mics) this.speaking.watch(pid, track);
  }

  _emit(type, detail) {
    this.dispatchEvent(detail === undefined ? new Event(type) : new CustomEvent(type, { detail }));
  }
}
