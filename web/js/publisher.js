/**
 * The publisher connection (`pcPub`): this browser offers its camera, microphone and
 * screen share to the server with `publish` and applies the answer from the
 * acknowledgement (docs/PROTOCOL.md, "Media (WebRTC)").
 *
 * One transceiver per source, `sendonly`. Switching a device replaces the sender's track
 * (no renegotiation). Stopping the screen share makes its transceiver `inactive` and
 * leaves it out of `tracks`; the next share reuses it (same mid). Every change that needs
 * an offer runs through one queue, so negotiations never overlap.
 *
 * A backup codec: when the server asks (`backup_codec`: someone cannot decode what we
 * send), the camera or screen is sent a second time on a transceiver of its own, limited
 * to that codec, published as `{mid, source, backup: true}`; it follows the source's
 * track (device switches, camera off, screen stopped). When nobody needs it any more
 * (`backup_codec` with codec null) that transceiver goes `inactive` and idles until the
 * server asks again (a transceiver is never removed: its m-line stays in the SDP).
 *
 * Video senders prefer keeping their resolution over their frame rate (see
 * {@link keepResolution}).
 *
 * Events (an EventTarget):
 * - `statechange`: {@link Publisher#state} changed
 * - `trackended` (detail: {source}): a published track ended by itself (the browser's
 *   "Stop sharing" button for the screen, an unplugged device)
 *
 * @module publisher
 */
import { applyCodecPreferences, newPeerConnection, preferredCodecs, trickle } from "./webrtc.js";

/** @typedef {"camera"|"microphone"|"screen"} Source */

/** @type {Record<Source, "audio"|"video">} */
export const SOURCE_KIND = { camera: "video", microphone: "audio", screen: "video" };

export class Publisher extends EventTarget {
  /**
   * @param {object} opts
   * @param {import("./signalling.js").Signalling} opts.signalling
   * @param {RTCIceServer[]} [opts.iceServers]
   */
  constructor({ signalling, iceServers = [] }) {
    super();
    this.sig = signalling;
    this.pc = newPeerConnection(iceServers);
    /** Sends the candidates held so far (see webrtc.js, `trickle`). */
    this._sendCandidates = trickle(this.pc, signalling, "publisher");
    /** @type {Map<Source, RTCRtpTransceiver>} */
    this.transceivers = new Map();
    /** @type {Map<Source, RTCRtpTransceiver>} backup-codec encodings, by source */
    this.backups = new Map();
    /** @type {Map<Source, RTCRtpTransceiver>} backups no longer wanted, reused when asked again */
    this.idleBackups = new Map();
    /** One stream id for everything we publish (the SDP's msid). */
    this.stream = new MediaStream();
    /** @type {"new"|"negotiating"|"published"|"failed"|"closed"} */
    this.state = "new";
    /** The last refusal, `{error, message}`, when state is "failed". */
    this.lastError = null;
    /** How many offers were answered (for tests and the debug hook). */
    this.negotiations = 0;
    this._queue = Promise.resolve();
    this._endedHandlers = new Map();
  }

  /**
   * Publish a set of tracks in one offer (the first publish after entering the room).
   * @param {Partial<Record<Source, MediaStreamTrack|null>>} tracks
   * @param {Promise<unknown>|null} [after] begin once it settles (what is queued later
   *   waits too)
   */
  start(tracks, after = null) {
    return this._run(async () => {
      await after;
      for (const [source, track] of Object.entries(tracks)) {
        if (track) await this._attach(/** @type {Source} */ (source), track);
      }
      if (this.transceivers.size > 0) await this._negotiate(); // mids come with the offer
    });
  }

  /**
   * Publish `track` for `source`, replace the one published there, or (null) stop it.
   * Camera and microphone keep their transceiver when the track goes away (nothing is
   * sent until a new track comes); the screen share is unpublished.
   * @param {Source} source
   * @param {MediaStreamTrack|null} track
   */
  setTrack(source, track) {
    return this._run(async () => {
      const tr = this.transceivers.get(source);
      if (track) {
        if (tr && tr.direction === "sendonly") {
          if (tr.sender.track !== track) {
            await tr.sender.replaceTrack(track);
            await this.backups.get(source)?.sender.replaceTrack(track);
            this._watchEnded(source, track);
          }
          return; // same m-line, same mid: no renegotiation
        }
        await this._attach(source, track);
        const backup = this.backups.get(source);
        if (backup) {
          backup.direction = "sendonly";
          await backup.sender.replaceTrack(track);
        }
        await this._negotiate();
        return;
      }
      if (!tr || tr.direction !== "sendonly") return;
      this._watchEnded(source, null);
      await tr.sender.replaceTrack(null);
      await this.backups.get(source)?.sender.replaceTrack(null);
      if (source === "screen") {
        tr.direction = "inactive";
        const backup = this.backups.get(source);
        if (backup) backup.direction = "inactive";
        await this._negotiate();
      }
    });
  }

  /**
   * Send `source` a second time in `codec` (the server's `backup_codec`), once.
   * @param {Source} source
   * @param {string} codec mime type, e.g. "video/VP8"
   */
  addBackup(source, codec) {
    return this._run(async () => {
      const main = this.transceivers.get(source);
      if (this.backups.has(source) || !main || SOURCE_KIND[source] !== "video") return;
      const wanted = [codec.toLowerCase(), "video/rtx"];
      const codecs = preferredCodecs("video").filter((c) => wanted.includes(c.mimeType.toLowerCase()));
      if (!codecs.some((c) => c.mimeType.toLowerCase() === codec.toLowerCase())) return;
      const direction = main.direction === "sendonly" ? "sendonly" : "inactive";
      let tr = this.idleBackups.get(source);
      if (tr) {
        this.idleBackups.delete(source);
        tr.direction = direction;
        await tr.sender.replaceTrack(main.sender.track);
      } else {
        tr = this.pc.addTransceiver(main.sender.track || "video", { direction, streams: [this.stream] });
      }
      tr.setCodecPreferences(codecs);
      this.backups.set(source, tr);
      await this._negotiate();
    });
  }

  /**
   * Stop sending `source`'s backup encoding (the server's `backup_codec` with codec null:
   * nobody needs it any more); its transceiver idles until the next {@link addBackup}.
   * @param {Source} source
   */
  removeBackup(source) {
    return this._run(async () => {
      const tr = this.backups.get(source);
      if (!tr) return;
      this.backups.delete(source);
      this.idleBackups.set(source, tr);
      tr.direction = "inactive";
      await tr.sender.replaceTrack(null);
      await this._negotiate();
    });
  }

  /** @param {Source} source @returns {MediaStreamTrack|null} the track being sent */
  track(source) {
    const tr = this.transceivers.get(source);
    return tr && tr.direction === "sendonly" ? tr.sender.track : null;
  }

  /** The `tracks` list of the last offer: `[{mid, source}]`. */
  publishedTracks() {
    return this._published();
  }

  close() {
    this.state = "closed";
    for (const [track, fn] of this._endedHandlers.values()) track.removeEventListener("ended", fn);
    this._endedHandlers.clear();
    try {
      this.pc.close();
    } catch {
      /* already closed */
    }
    this._emit("statechange");
  }

  // ---- internals ----

  /** Add a transceiver for `source`, or revive its inactive one. */
  async _attach(source, track) {
    const kind = SOURCE_KIND[source];
    let tr = this.transceivers.get(source);
    if (tr && tr.currentDirection !== "stopped") {
      tr.direction = "sendonly";
      await tr.sender.replaceTrack(track);
    } else {
      tr = this.pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
      applyCodecPreferences(tr, kind);
      this.transceivers.set(source, tr);
    }
    if (source === "screen" && "contentHint" in track) track.contentHint = "detail";
    this._watchEnded(source, track);
  }

  _watchEnded(source, track) {
    const old = this._endedHandlers.get(source);
    if (old) old[0].removeEventListener("ended", old[1]);
    this._endedHandlers.delete(source);
    if (!track) return;
    const fn = () => {
      if (this.track(source) === track) {
        this.dispatchEvent(new CustomEvent("trackended", { detail: { source } }));
      }
    };
    track.addEventListener("ended", fn);
    this._endedHandlers.set(source, [track, fn]);
  }

  /** @returns {{mid: string, source: Source}[]} */
  _published() {
    const out = [];
    for (const [source, tr] of this.transceivers) {
      if (tr.direction === "sendonly" && tr.mid !== null) out.push({ mid: tr.mid, source });
    }
    for (const [source, tr] of this.backups) {
      if (tr.direction === "sendonly" && tr.mid !== null) out.push({ mid: tr.mid, source, backup: true });
    }
    return out;
  }

  /** createOffer -> setLocalDescription -> gather -> publish -> setRemoteDescription. */
  async _negotiate() {
    if (this.state === "closed") return;
    this._setState("negotiating");
    const pc = this.pc;
    await pc.setLocalDescription(await pc.createOffer());
    performance.mark("tiaojie:pub_offer");
    if (this.state === "closed") return; // the offer goes at once: candidates follow
    const ack = await this.sig.request("publish", {
      sdp: pc.localDescription.sdp,
      type: "offer",
      tracks: this._published(),
    });
    performance.mark("tiaojie:pub_answered");
    if (this.state === "closed") return;
    if (!ack.ok || typeof ack.sdp !== "string") {
      this.lastError = { error: ack.error || "server", message: ack.message || "no answer" };
      console.warn("publish refused:", this.lastError);
      try {
        await pc.setLocalDescription({ type: "rollback" });
      } catch {
        /* nothing to roll back */
      }
      this._setState("failed");
      return;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
    this._sendCandidates();
    for (const [source, tr] of this.transceivers) {
      if (SOURCE_KIND[source] === "video" && tr.direction === "sendonly") await keepResolution(tr);
    }
    this.negotiations += 1;
    this.lastError = null;
    this._setState("published");
  }

  /** Run `fn` after everything queued before it; errors are logged, never thrown. */
  _run(fn) {
    const next = this._queue.then(fn).catch((e) => {
      if (this.state === "closed") return;
      console.error("publisher:", e);
      this.lastError = { error: "webrtc", message: String(e?.message || e) };
      this._setState("failed");
    });
    this._queue = next;
    return next;
  }

  _setState(state) {
    if (this.state === "closed") return;
    this.state = state;
    this._emit("statechange");
  }

  _emit(type) {
    this.dispatchEvent(new Event(type));
  }
}

/**
 * Under CPU or bandwidth pressure, lower the frame rate rather than the resolution:
 * faces and documents stay legible, and the recording keeps one picture size (a size
 * change mid-stream means new SPS/PPS for the recorder's MP4).
 * @param {RTCRtpTransceiver} transceiver
 */
async function keepResolution(transceiver) {
  const sender = transceiver.sender;
  try {
    const params = sender.getParameters();
    if (params.degradationPreference === "maintain-resolution" || !params.encodings?.length) return;
    params.degradationPreference = "maintain-resolution";
    await sender.setParameters(params);
  } catch (e) {
    console.warn("degradationPreference:", e); // optional: older browsers lack it
  }
}
