/**
 * The subscriber connection (`pcSub`): the server offers everyone else's publications
 * with `subscriber_offer`, this browser answers with `subscriber_answer`
 * (docs/PROTOCOL.md, "Media (WebRTC)"). Renegotiations may come at any time; they are
 * handled one after the other.
 *
 * Each offer lists its tracks `[{mid, publication_id, participant_id, kind, source}]`;
 * that list is the truth about which transceiver carries what. A mid no longer listed
 * is unused.
 *
 * Publications this browser cannot receive (its answer rejected their m-section: it
 * decodes none of the offered codecs) come as `unavailable` in the offer and in the
 * answer's acknowledgement: {@link Subscriber#unavailable}.
 *
 * Events (an EventTarget):
 * - `change`: {@link Subscriber#tracks} changed (after each answered offer)
 *
 * @module subscriber
 */
import { newPeerConnection, trickle } from "./webrtc.js";

/**
 * One received track and whose it is.
 * @typedef {object} RemoteTrack
 * @property {string} mid
 * @property {MediaStreamTrack} track
 * @property {string} participantId
 * @property {string} publicationId
 * @property {"audio"|"video"} kind
 * @property {"camera"|"microphone"|"screen"} source
 */

export class Subscriber extends EventTarget {
  /**
   * @param {object} opts
   * @param {import("./signalling.js").Signalling} opts.signalling
   * @param {RTCIceServer[]} [opts.iceServers]
   */
  constructor({ signalling, iceServers = [] }) {
    super();
    this.sig = signalling;
    this.iceServers = iceServers;
    /** @type {RTCPeerConnection|null} created on the first offer */
    this.pc = null;
    /** @type {Map<string, RemoteTrack>} mid -> track */
    this.tracks = new Map();
    /**
     * Publications we cannot receive, by publication id:
     * `{publication_id, participant_id, kind, source, codec, reason}`.
     * @type {Map<string, object>}
     */
    this.unavailable = new Map();
    /** Offers received and answered (for tests and the debug hook). */
    this.offers = 0;
    this.answers = 0;
    this.closed = false;
    this._queue = Promise.resolve();
    /** Offers handled or waiting their turn. */
    this._pending = 0;
    /** Sends the candidates held so far (see webrtc.js, `trickle`). */
    this._sendCandidates = () => {};
  }

  /**
   * Handle a `subscriber_offer` notification (queued behind any earlier one).
   * @param {{sdp: string, type: string, tracks: object[]}} offer
   */
  handleOffer(offer) {
    this.offers += 1;
    const answer = () =>
      this._answer(offer).catch((e) => {
        if (!this.closed) console.error("subscriber:", e);
      });
    // None under way: start now, not after the caller's task (entering the room, the
    // browser applies the offer while the page draws the room); else after the last one.
    this._pending += 1;
    const next = this._pending > 1 ? this._queue.then(answer) : answer();
    next.then(() => {
      this._pending -= 1;
    });
    this._queue = next;
    return next;
  }

  /** @returns {RemoteTrack[]} */
  list() {
    return [...this.tracks.values()];
  }

  close() {
    this.closed = true;
    this.tracks = new Map();
    try {
      this.pc?.close();
    } catch {
      /* already closed */
    }
  }

  // ---- internals ----

  async _answer({ sdp, tracks, unavailable }) {
    if (this.closed || typeof sdp !== "string") return;
    this._setUnavailable(unavailable);
    performance.mark("tiaojie:sub_offer");
    if (!this.pc) this.pc = this._newPc();
    const pc = this.pc;
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    performance.mark("tiaojie:sub_local");
    // the tracks exist from here on: show them while the answer travels
    this._map(Array.isArray(tracks) ? tracks : []);
    performance.mark("tiaojie:sub_gathered");
    if (this.closed) return; // the answer goes at once: candidates follow (trickle)
    const ack = await this.sig.request("subscriber_answer", {
      sdp: pc.localDescription.sdp,
      type: "answer",
    });
    if (!ack.ok) console.warn("subscriber_answer refused:", ack.error, ack.message);
    else {
      performance.mark("tiaojie:sub_answered");
      this._sendCandidates();
      this.answers += 1;
      if (this._setUnavailable(ack.unavailable)) this._map(Array.isArray(tracks) ? tracks : []);
    }
  }

  /** A new pcSub; its connection states are marked on the performance timeline. */
  _newPc() {
    const pc = newPeerConnection(this.iceServers);
    const mark = (what) => () => performance.mark(`tiaojie:sub_${what}_${pc[`${what}State`]}`);
    pc.addEventListener("iceconnectionstatechange", mark("iceConnection"));
    pc.addEventListener("connectionstatechange", mark("connection"));
    this._sendCandidates = trickle(pc, this.sig, "subscriber");
    return pc;
  }

  /** Take the server's `unavailable` list; whether it changed. */
  _setUnavailable(list) {
    if (!Array.isArray(list)) return false;
    const next = new Map(list.filter((u) => u?.publication_id).map((u) => [u.publication_id, u]));
    const same = next.size === this.unavailable.size && [...next.keys()].every((k) => this.unavailable.has(k));
    this.unavailable = next;
    return !same;
  }

  /** Rebuild the mid -> track map from an offer's `tracks` list. */
  _map(list) {
    const byMid = new Map();
    for (const tr of this.pc.getTransceivers()) {
      if (tr.mid !== null) byMid.set(tr.mid, tr);
    }
    /** @type {Map<string, RemoteTrack>} */
    const next = new Map();
    for (const info of list) {
      const tr = byMid.get(String(info?.mid));
      if (!tr || !info.participant_id || this.unavailable.has(info.publication_id)) continue;
      next.set(tr.mid, {
        mid: tr.mid,
        track: tr.receiver.track,
        participantId: info.participant_id,
        publicationId: info.publication_id || "",
        kind: info.kind || tr.receiver.track.kind,
        source: info.source || (tr.receiver.track.kind === "audio" ? "microphone" : "camera"),
      });
    }
    this.tracks = next;
    this.dispatchEvent(new Event("change"));
  }
}
