/**
 * What this page does not receive because of a caucus or a screen (docs/PROTOCOL.md:
 * `caucus_updated`, `screened_updated`): the SFU simply stops forwarding, so a remote
 * video would freeze on its last frame. The room view asks {@link Separation#withholds}
 * and shows the person's initial instead, and the quality indicator does not call the
 * silence a bad connection.
 *
 * @module separation
 */

export class Separation extends EventTarget {
  /**
   * @param {import("./signalling.js").Signalling} signalling
   * @param {import("./room-state.js").RoomState} room
   */
  constructor(signalling, room) {
    super();
    this.room = room;
    /** @type {Map<string, string>} participant id -> the caucus they are in */
    this.places = new Map();
    /** @type {Map<string, "video"|"all">} who I do not see ("video") or see nor hear */
    this.screened = new Map();
    signalling.on("room_state", (p) => {
      this._caucuses(p.caucuses || []);
      this._screened(p.screened || []);
    });
    signalling.on("caucus_updated", (p) => this._caucuses(p.caucuses || []));
    signalling.on("screened_updated", (p) => this._screened(p.screened || []));
  }

  /**
   * Does this page not receive `participantId`'s `kind` ("video" | "audio") now?
   * @param {string} participantId
   * @param {"video"|"audio"} kind
   */
  withholds(participantId, kind) {
    const me = this.room.self?.id;
    if (me && this.places.get(me) !== this.places.get(participantId)) return true;
    const mode = this.screened.get(participantId);
    return mode === "all" || (mode === "video" && kind === "video");
  }

  _caucuses(caucuses) {
    this.places = new Map(caucuses.flatMap((c) => c.members.map((id) => [id, c.id])));
    this.dispatchEvent(new Event("change"));
  }

  _screened(screened) {
    this.screened = new Map(screened.map((s) => [s.from, s.mode]));
    this.dispatchEvent(new Event("change"));
  }
}
