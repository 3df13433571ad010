/**
 * The requests this participant sends in the room, for the room view and its panels:
 * {@link Requests#send} sends once at a time per key (a second click while one is in
 * flight does nothing) and shows a refusal as a toast; {@link Requests#request} is the
 * plain call, for callers that show refusals in place.
 *
 * @module requests
 */
import { errorText } from "./i18n.js";
import { toast } from "./ui.js";

export class Requests {
  /** @param {import("./signalling.js").Signalling} signalling */
  constructor(signalling) {
    this.sig = signalling;
    /** Keys of the requests in flight (buttons stay enabled: they keep focus). */
    this.busy = new Set();
    signalling.on("request_error", ({ event, error, message }) => {
      console.warn(`request ${event} refused: ${error} ${message}`);
    });
  }

  /**
   * Send a request unless one with the same key is in flight; a refusal shows a toast.
   * @param {string} key
   * @param {string} event
   * @param {object} payload
   * @returns {Promise<import("./signalling.js").Ack|null>} null when already in flight
   */
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

  /**
   * @param {string} event
   * @param {object} [payload]
   * @returns {Promise<import("./signalling.js").Ack>}
   */
  request(event, payload) {
    return this.sig.request(event, payload);
  }
}
