/**
 * socket.io signalling connection to a Tiaojie room (see docs/PROTOCOL.md).
 * @module signalling
 */
import { io } from "../vendor/socket.io/socket.io.esm.min.js";

/** Notifications the server sends (server -> client). */
export const NOTIFICATIONS = [
  "welcome",
  "admitted",
  "room_state",
  "participant_joined",
  "participant_updated",
  "participant_left",
  "lobby_updated",
  "room_updated",
  "unmute_requested",
  "closed",
  "request_error",
  // media (docs/PROTOCOL.md, "Media (WebRTC)")
  "subscriber_offer",
  "publication_added",
  "publication_removed",
  "publication_updated",
  "backup_codec",
  "video_paused",
  "video_resumed",
  // recording (docs/PROTOCOL.md: start_recording, recording_consent)
  "recording_state",
  // the agreement (docs/PROTOCOL.md, "Agreement")
  "agreement_state",
  // caucuses and screening (docs/PROTOCOL.md: caucus_*, screen)
  "caucus_updated",
  "caucus_requested",
  "caucus_request_answered",
  "caucus_request_declined",
  "screening_updated",
  "screened_updated",
  "caucus_time",
  "mediator_notice",
  // chat and stepping out (docs/PROTOCOL.md, "Chat")
  "chat",
  "chat_history",
  "sent_to_lobby",
];

/** A loaded server may take seconds to sign or seal; "no response" only after 20 s. */
const REQUEST_TIMEOUT_MS = 20000;
/** Longest wait between reconnection attempts: back within ~3 s of the network. */
export const RECONNECT_DELAY_MAX_MS = 3000;

/**
 * @typedef {{ok: true, [k: string]: any} | {ok: false, error: string, message: string}} Ack
 */

/**
 * One participant's signalling connection.
 *
 * Besides the protocol notifications (subscribe with {@link Signalling#on}) it
 * reports connection life-cycle through these pseudo-events:
 * - `refused` (code, message, url): the server refused the connection (`connect_error`
 *   with data); socket.io does not retry, the connection is over. Code `redirect`: the
 *   room's media is on the node at `url` (docs/PROTOCOL.md, "Several nodes")
 * - `reconnecting` (): the transport dropped or could not connect; socket.io retries
 * - `unreachable` (n): the n-th reconnection attempt in a row failed to reach the server
 * - `connected` (): (re)connected; `welcome` follows
 * - `disconnected` (reason): the connection ended for good without a `closed` first
 *
 * Reconnection (docs/PROTOCOL.md, "Reconnecting"): socket.io reconnects by itself with
 * backoff (1 s doubling to {@link RECONNECT_DELAY_MAX_MS}) using the same link; the server
 * kept our seat, so `welcome` and `room_state` follow as on entering and the media is
 * made anew. {@link Signalling#reconnect} forces the same when the peer connections
 * failed while the socket still looked up. Closing the page says goodbye (`leave`), so
 * the others see us leave, not "reconnecting".
 */
export class Signalling {
  /**
   * @param {object} opts
   * @param {string} opts.token invite token
   * @param {string} [opts.name] display name (1-64 characters) overriding the invite's
   *   (or given to {@link Signalling#connect})
   */
  constructor({ token, name }) {
    this.token = token;
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
    /** Set once `closed` arrived or {@link close} was called: no more reconnects. */
    this.finished = false;
    this.socket = io({
      auth: name ? { token, name } : { token },
      transports: ["websocket", "polling"],
      autoConnect: false,
      reconnectionDelay: 1000,
      reconnectionDelayMax: RECONNECT_DELAY_MAX_MS,
    });
    /** Reconnections so far (for tests and the quality panel). */
    this.reconnects = 0;
    /** @type {Array<[string, any[]]>|null} what arrived while held (see {@link Signalling#hold}) */
    this._held = null;
    window.addEventListener("pagehide", () => this.goodbye());

    for (const ev of NOTIFICATIONS) {
      this.socket.on(ev, (payload) => {
        if (ev === "closed") this.finished = true;
        this._fire(ev, payload ?? {});
      });
    }
    this.socket.io.on("reconnect", () => {
      this.reconnects += 1;
    });
    /** Failed reconnection attempts in a row (the node may be gone). */
    this._unreachable = 0;
    this.socket.io.on("reconnect_error", () => {
      this._unreachable += 1;
      if (!this.finished) this._fire("unreachable", this._unreachable);
    });
    this.socket.on("connect", () => {
      this._unreachable = 0;
      this._fire("connected");
    });
    this.socket.on("connect_error", (err) => {
      if (this.finished) return;
      if (!this.socket.active) {
        // refused by the server's connect handler: err.message is the code
        const data = err?.data && typeof err.data === "object" ? err.data : {};
        this.finished = true;
        this._fire(
          "refused",
          data.error || err?.message || "unknown",
          data.message || "",
          data.url || "",
        );
      } else {
        this._fire("reconnecting");
      }
    });
    this.socket.on("disconnect", (reason) => {
      if (this.finished) return;
      if (this.socket.active) {
        this._fire("reconnecting"); // network drop: socket.io reconnects by itself
      } else {
        this.finished = true;
        this._fire("disconnected", reason);
      }
    });
  }

  /**
   * Open the transport (the WebSocket) without entering the room: the join page does it
   * while the person is still on the join screen, so that joining costs one message
   * instead of a WebSocket handshake first (the server learns nothing from it).
   */
  preopen() {
    this.socket.io.open();
  }

  /**
   * Join: open the connection (on the transport {@link Signalling#preopen} opened, if any).
   * @param {string} [name] display name overriding the invite's
   */
  connect(name) {
    if (name) this.socket.auth = { token: this.token, name };
    this.socket.connect();
  }

  /**
   * Keep every notification and pseudo-event from now on until {@link Signalling#release}:
   * the join page enters before the modules that subscribe to the room's events have
   * loaded, and nothing the server sends meanwhile may be lost.
   */
  hold() {
    this._held ??= [];
  }

  /** Deliver, in order, what arrived since {@link Signalling#hold}, and stop holding. */
  release() {
    const held = this._held || [];
    this._held = null;
    for (const [event, args] of held) this._fire(event, ...args);
  }

  /** Every handler subscribed so far (for {@link Signalling#replay}). */
  handlers() {
    return new Set([...this._handlers.values()].flatMap((fns) => [...fns]));
  }

  /**
   * Deliver `event` again, only to the handlers subscribed since `before`
   * ({@link Signalling#handlers}): the room view, made after the first `room_state` was
   * handled by the media, gets that `room_state` as if it had been there.
   * @param {string} event
   * @param {any[]} args
   * @param {Set<Function>} before
   */
  replay(event, args, before) {
    for (const fn of this._handlers.get(event) || []) {
      if (before.has(fn)) continue;
      try {
        fn(...args);
      } catch (e) {
        console.error(`handler for ${event}:`, e);
      }
    }
  }

  /**
   * Subscribe to a notification or pseudo-event.
   * @param {string} event
   * @param {Function} fn
   */
  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(fn);
    return this;
  }

  /**
   * Send a request and wait for its acknowledgement.
   * Never throws: a timeout or a lost connection becomes `{ok: false, error}`.
   * @param {string} event
   * @param {object} [payload]
   * @returns {Promise<Ack>}
   */
  async request(event, payload = {}) {
    if (!this.socket.connected) {
      return { ok: false, error: "network", message: "not connected" };
    }
    try {
      const ack = await this.socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck(event, payload);
      if (ack && typeof ack === "object" && "ok" in ack) return ack;
      return { ok: false, error: "server", message: "malformed acknowledgement" };
    } catch {
      return { ok: false, error: "timeout", message: "no acknowledgement" };
    }
  }

  /**
   * Drop the connection as a network failure would, so that socket.io reconnects (with
   * its backoff) and the server gives us our seat and fresh media connections again.
   * For peer connections that failed while the socket stayed up.
   */
  reconnect() {
    if (this.finished || !this.socket.connected) return; // already reconnecting
    this._fire("reconnecting");
    this.socket.io.engine?.close();
  }

  /** The page is going away: leave the room (not "reconnecting"), then disconnect. */
  goodbye() {
    if (this.finished) return;
    if (this.socket.connected) this.socket.emit("leave", {});
    this.close();
  }

  /** Disconnect for good (no reconnection). */
  close() {
    this.finished = true;
    this.socket.disconnect();
  }

  _fire(event, ...args) {
    if (this._held) {
      this._held.push([event, args]);
      return;
    }
    for (const fn of this._handlers.get(event) || []) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`handler for ${event}:`, e);
      }
    }
  }
}
