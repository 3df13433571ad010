/**
 * Everyone's side of recording (docs/PROTOCOL.md, `recording_state` and `recording_consent`):
 *
 * - the always-visible indicator `#recording-indicator` (red dot + 录制中 / Recording)
 *   while the room is being recorded;
 * - the consent prompt `#recording-consent-dialog`: a modal that says the session is
 *   recorded as evidence, with 同意 / 不同意 (Accept / Refuse); the answer goes to the
 *   server with `recording_consent {recording_id, accepted}` and into the recording's
 *   chain. It opens when recording starts, and on entering a room being recorded;
 * - after a refusal, `#recording-refused`: the person may leave (or agree after all);
 *   the mediator sees the refusal in the console.
 *
 * State comes from `room_state.recording` and `recording_state`. Mediators get the
 * `consents` of everyone, the others do not: they remember their own answer for this
 * recording in localStorage, so a reload does not ask again. The mediator who started a
 * recording is not asked: starting it is their consent (see recording-controls.js).
 * The recorder participant (role `recorder`) publishes nothing: it is shown in the
 * participant list with a recording icon ({@link recorderMark}), never as a tile.
 *
 * @module recording-consent
 */
import { onLangChange, t } from "./i18n.js";
import { ICONS } from "./icons.js";
import { h, toast } from "./ui.js";

const STORAGE_PREFIX = "tiaojie.consent.";

const $ = (id) => document.getElementById(id);

/**
 * @typedef {object} Consent
 * @property {boolean} accepted
 * @property {number} at
 * @property {string} name
 * @property {string} role
 *
 * @typedef {object} Recording
 * @property {string} id
 * @property {number} started_at
 * @property {string} started_by participant id of the mediator (or "admin")
 * @property {Record<string, Consent>} [consents] mediators only
 */

/**
 * The recording icon next to the recorder participant in the participant list
 * (null for everyone else).
 * @param {{role: string}} p
 * @returns {HTMLElement|null}
 */
export function recorderMark(p) {
  if (p?.role !== "recorder") return null;
  return h(
    "span.indicator.recorder",
    { title: t("recording.recorder"), html: ICONS.record },
    h("span.sr-only", { text: t("recording.recorder") }),
  );
}

/** The answer remembered for a recording (true, false, or null: not answered here). */
function remembered(recordingId, participantId) {
  try {
    const v = localStorage.getItem(`${STORAGE_PREFIX}${recordingId}.${participantId}`);
    return v === "accepted" ? true : v === "refused" ? false : null;
  } catch {
    return null;
  }
}

function remember(recordingId, participantId, accepted) {
  try {
    localStorage.setItem(
      `${STORAGE_PREFIX}${recordingId}.${participantId}`,
      accepted ? "accepted" : "refused",
    );
  } catch {
    /* private mode: the prompt may come again after a reload */
  }
}

export class RecordingConsent extends EventTarget {
  /**
   * @param {object} opts
   * @param {import("./room-view.js").RoomView} opts.view the room view (signalling, leave)
   */
  constructor({ view }) {
    super();
    this.view = view;
    /** @type {Recording|null} */
    this.recording = null;
    /** @type {{id: string, role: string}|null} */
    this.self = null;
    /** This person's answer to the current recording (null: not yet). */
    this.answer = null;
    this.sending = false;
    this.el = {
      indicator: $("recording-indicator"),
      dialog: /** @type {HTMLDialogElement} */ ($("recording-consent-dialog")),
      accept: $("recording-consent-accept"),
      refuse: $("recording-consent-refuse"),
      error: $("recording-consent-error"),
      refused: $("recording-refused"),
      refusedLeave: $("recording-refused-leave"),
      refusedAccept: $("recording-refused-accept"),
    };
    const el = this.el;
    el.accept.addEventListener("click", () => this.answerWith(true));
    el.refuse.addEventListener("click", () => this.answerWith(false));
    el.refusedAccept.addEventListener("click", () => this.answerWith(true));
    el.refusedLeave.addEventListener("click", () => view.onLeave());
    // an answer is needed: Escape does not dismiss the prompt
    el.dialog.addEventListener("cancel", (e) => e.preventDefault());

    const sig = view.sig;
    sig.on("room_state", ({ recording, self }) => {
      if (self) this.self = self;
      this.update(recording || null);
    });
    sig.on("recording_state", ({ recording }) => {
      this.update(recording || null);
      if (!recording) this.dropRecorder();
    });
    for (const ev of ["closed", "refused", "disconnected"]) sig.on(ev, () => this.update(null));
    onLangChange(() => this.render());
  }

  /** Whether this person is asked for consent (not the recorder, not the one who started it). */
  get asked() {
    const me = this.self;
    const rec = this.recording;
    if (!me || !rec || me.role === "recorder") return false;
    return !(me.role === "mediator" && rec.started_by === me.id);
  }

  /**
   * The recorder exists only while recording, but the server announces no
   * `participant_left` for it when recording stops (its invite is revoked and the
   * participant dropped at once): take it off the list here.
   */
  dropRecorder() {
    const view = this.view;
    let changed = false;
    for (const [id, p] of view.participants) {
      if (p.role === "recorder") changed = view.participants.delete(id) || changed;
    }
    if (changed) view.render();
  }

  /** @param {Recording|null} recording */
  update(recording) {
    const before = this.recording?.id;
    this.recording = recording;
    if (!recording) {
      this.answer = null;
    } else if (recording.id !== before || this.answer === null) {
      const mine = this.self ? recording.consents?.[this.self.id] : undefined;
      this.answer = mine ? !!mine.accepted : this.self ? remembered(recording.id, this.self.id) : null;
    }
    this.render();
    this.dispatchEvent(new Event("change"));
  }

  /**
   * Send this person's answer (`recording_consent`).
   * @param {boolean} accepted
   */
  async answerWith(accepted) {
    const rec = this.recording;
    if (!rec || this.sending) return;
    this.sending = true;
    this.renderButtons();
    try {
      const ack = await this.view.sig.request("recording_consent", {
        recording_id: rec.id,
        accepted,
      });
      if (!ack.ok) {
        this.showError(this.view.errorText(ack.error, ack.message));
        if (ack.error === "not_recording") this.update(null);
        return;
      }
      if (this.recording?.id !== rec.id) return; // a new recording meanwhile
      this.answer = accepted;
      if (this.self) remember(rec.id, this.self.id, accepted);
      this.showError("");
      toast(t(accepted ? "consent.thanks" : "consent.refused.toast"), "info");
      this.render();
      if (!accepted) this.el.refused.scrollIntoView?.({ block: "nearest" });
    } finally {
      this.sending = false;
      this.renderButtons();
    }
  }

  showError(text) {
    this.el.error.hidden = !text;
    this.el.error.textContent = text;
  }

  render() {
    const { el } = this;
    const on = !!this.recording;
    el.indicator.hidden = !on;
    document.body.classList.toggle("recording-on", on);
    const ask = on && this.asked && this.answer === null;
    const dialog = el.dialog;
    if (ask && !dialog.open) {
      this.showError("");
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
      el.accept.focus();
    } else if (!ask && dialog.open) {
      dialog.close();
    }
    el.refused.hidden = !(on && this.asked && this.answer === false);
    this.renderButtons();
  }

  renderButtons() {
    this.el.accept.disabled = this.sending;
    this.el.refuse.disabled = this.sending;
    this.el.refusedAccept.disabled = this.sending;
  }
}
