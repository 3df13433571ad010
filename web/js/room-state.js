/**
 * What this participant knows about the room, as the signalling notifications deliver
 * it (docs/PROTOCOL.md): the room summary, yourself, the participants inside, the lobby
 * (mediators only), the publications, the recording and the agreement. The views read it
 * and listen to it; none of them keeps a copy or reaches into another view for it.
 *
 * Values are replaced, never changed in place, and every notification that changes
 * something fires one `change` event (a CustomEvent) whose detail is:
 * - `parts`: a Set of what changed: "summary", "self", "participants", "lobby",
 *   "publications", "recording", "agreement";
 * - `previous`: the values those parts had before;
 * - `entered`: true for a `room_state` (entering, or re-entering after a reconnect:
 *   everything but the agreement was replaced), with `iceServers` from it.
 * `unmute-requested` (detail `{track}`) fires when a mediator asks us to speak.
 *
 * @module room-state
 */
import { SPEAKING_ROLES } from "./roles.js";

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
 *
 * @typedef {object} Publication
 * @property {string} id
 * @property {string} participant_id
 * @property {"audio"|"video"} kind
 * @property {"microphone"|"camera"|"screen"} source
 * @property {string} codec
 * @property {boolean} muted
 *
 * @typedef {object} Recording
 * @property {string} id
 * @property {number} started_at
 * @property {string} started_by participant id of the mediator (or "admin")
 * @property {Record<string, {accepted: boolean, at: number, name: string, role: string}>} [consents]
 *   mediators only
 *
 * @typedef {object} Signer
 * @property {"applicant"|"respondent"|"mediator"} role
 * @property {string} name
 * @property {number|null} party_index
 * @property {string|null} participant_id who signs this party line (null: not assigned)
 * @property {number|null} signed_at
 * @property {string|null} signed_by
 *
 * @typedef {object} AgreementState
 * @property {string} code
 * @property {"drafting"|"signing"|"sealing"|"signed"} status
 * @property {number} version
 * @property {string} fingerprint
 * @property {string} text
 * @property {any} draft
 * @property {string[]} incomplete
 * @property {Signer[]} signers
 * @property {string|null} seal_error
 * @property {boolean} pdf_ready
 * @property {string|null} pdf_sha256
 * @property {string} status_url
 *
 * @typedef {object} Change
 * @property {Set<string>} parts
 * @property {Record<string, any>} previous
 * @property {boolean} entered
 * @property {RTCIceServer[]} [iceServers]
 */

export class RoomState extends EventTarget {
  /** @param {import("./signalling.js").Signalling} signalling */
  constructor(signalling) {
    super();
    /** @type {{id: string, title: string, locked: boolean, lobby: boolean, status: string}|null} */
    this.summary = null;
    /** @type {Participant|null} */
    this.self = null;
    /** @type {Map<string, Participant>} everyone inside, yourself included */
    this.participants = new Map();
    /** @type {Participant[]} */
    this.lobby = [];
    /** @type {Map<string, Publication>} */
    this.publications = new Map();
    /** @type {Recording|null} */
    this.recording = null;
    /** @type {AgreementState|null} */
    this.agreement = null;

    /** @type {Array<(change: Change) => void>} */
    this._watchers = [];
    /** @type {Change|null} the last `room_state`'s change */
    this._entered = null;

    const s = signalling;
    s.on("room_state", (p) => this._enter(p));
    s.on("participant_joined", ({ participant }) => this._upsert(participant));
    s.on("participant_updated", ({ participant }) => this._upsert(participant));
    s.on("participant_left", ({ participant_id }) => {
      if (!this.participants.has(participant_id)) return;
      const participants = new Map(this.participants);
      participants.delete(participant_id);
      this._set({ participants });
    });
    s.on("lobby_updated", ({ lobby }) => this._set({ lobby: Array.isArray(lobby) ? lobby : [] }));
    s.on("room_updated", ({ room }) => {
      if (room) this._set({ summary: { ...this.summary, ...room } });
    });
    s.on("unmute_requested", ({ track }) => {
      this.patchSelf({ unmute_requested: true });
      this.dispatchEvent(new CustomEvent("unmute-requested", { detail: { track } }));
    });
    s.on("publication_added", ({ publication }) => this._putPublication(publication));
    s.on("publication_updated", ({ publication }) => this._putPublication(publication));
    s.on("publication_removed", ({ publication_id }) => {
      if (!this.publications.has(publication_id)) return;
      const publications = new Map(this.publications);
      publications.delete(publication_id);
      this._set({ publications });
    });
    s.on("recording_state", ({ recording }) => this._recordingState(recording || null));
    s.on("agreement_state", (agreement) => {
      if (agreement && typeof agreement.fingerprint === "string") this._set({ agreement });
    });
    // the room is left: nothing is recorded for us any more
    for (const ev of ["closed", "refused", "disconnected"]) {
      s.on(ev, () => this._set({ recording: null }));
    }
  }

  get isMediator() {
    return this.self?.role === "mediator";
  }

  /** Whether this participant publishes media (mediator, party, expert). */
  get speaks() {
    return !!this.self && SPEAKING_ROLES.has(this.self.role);
  }

  /**
   * Call `fn(change)` after every change to one of `parts`, and on entering the room.
   * @param {string[]} parts
   * @param {(change: Change) => void} fn
   */
  watch(parts, fn) {
    this._watchers.push(fn);
    this.addEventListener("change", (e) => {
      const change = /** @type {CustomEvent<Change>} */ (e).detail;
      if (change.entered || parts.some((p) => change.parts.has(p))) fn(change);
    });
  }

  /** Every watcher so far (for {@link RoomState#replayEntered}). */
  watchers() {
    return new Set(this._watchers);
  }

  /**
   * Give the watchers added since `before` ({@link RoomState#watchers}) the last
   * entering change, as if they had been there: the room view is made after the media
   * answered the first subscriber offer.
   * @param {Set<Function>} before
   */
  replayEntered(before) {
    if (!this._entered) return;
    for (const fn of this._watchers) {
      if (before.has(fn)) continue;
      try {
        fn(this._entered);
      } catch (e) {
        console.error("room watcher:", e);
      }
    }
  }

  /** Change our own record now (muting is immediate); the server's update confirms it. */
  patchSelf(change) {
    if (!this.self) return;
    const self = { ...this.self, ...change };
    this._set({ self, participants: new Map(this.participants).set(self.id, self) });
  }

  /** The recording as a request's acknowledgement gives it (before `recording_state`). */
  setRecording(recording) {
    this._set({ recording });
  }

  // ---- notifications ----

  _enter({ room, self, participants, lobby, publications, recording, ice_servers, subscriber_offer }) {
    const people = new Map((participants || []).map((p) => [p.id, p]));
    if (self) people.set(self.id, self);
    this._set(
      {
        summary: room,
        self: self || null,
        participants: people,
        lobby: lobby || [],
        publications: new Map((publications || []).map((p) => [p.id, p])),
        recording: recording || null,
      },
      { entered: true, iceServers: ice_servers, subscriberOffer: subscriber_offer || null },
    );
  }

  /** @param {Participant} p */
  _upsert(p) {
    if (!p?.id || p.status === "lobby") return; // lobby people come through lobby_updated
    const change = { participants: new Map(this.participants).set(p.id, p) };
    if (p.id === this.self?.id) change.self = p;
    this._set(change);
  }

  /** @param {Publication} publication */
  _putPublication(publication) {
    if (!publication?.id) return;
    this._set({ publications: new Map(this.publications).set(publication.id, publication) });
  }

  /**
   * The recorder exists only while recording, but the server announces no
   * `participant_left` for it when recording stops (its invite is revoked and the
   * participant dropped at once): take it off the list here.
   * @param {Recording|null} recording
   */
  _recordingState(recording) {
    const change = { recording };
    if (!recording) {
      const others = [...this.participants].filter(([, p]) => p.role !== "recorder");
      if (others.length !== this.participants.size) change.participants = new Map(others);
    }
    this._set(change);
  }

  /**
   * Replace values and announce what changed (nothing, if nothing did).
   * @param {Record<string, any>} values
   * @param {{entered?: boolean, iceServers?: RTCIceServer[], subscriberOffer?: object|null}} [extra]
   */
  _set(values, { entered = false, iceServers, subscriberOffer = null } = {}) {
    const parts = new Set();
    const previous = {};
    for (const [part, value] of Object.entries(values)) {
      if (this[part] === value) continue;
      previous[part] = this[part];
      this[part] = value;
      parts.add(part);
    }
    if (!parts.size && !entered) return;
    const detail = { parts, previous, entered, iceServers, subscriberOffer };
    if (entered) this._entered = detail;
    this.dispatchEvent(new CustomEvent("change", { detail }));
  }
}
