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
 * It renders the {@link RoomState}'s recording (`room_state.recording` and
 * `recording_state`; the state drops the recorder participant when recording stops and
 * clears the recording when the room is left). Mediators get the
 * `consents` of everyone, the others do not: they remember their own answer for this
 * recording in localStorage, so a reload does not ask again. The mediator who started a
 * recording is not asked: starting it is their consent (see recording-controls.js).
 * The recorder participant (role `recorder`) publishes nothing: it is shown in the
 * participant list with a recording icon ({@link recorderMark}), never as a tile.
 *
 * @module recording-consent
 */
import { errorText, onLangChange, t } from "./i18n.js";
import { ICONS } from "./icons.js";
import { h, toast } from "./ui.js";

const STORAGE_PREFIX = "tiaojie.consent.";

const $ = (id) => document.getElementById(id);

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

export class RecordingConsent {
  /**
   * @param {object} opts
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./requests.js").Requests} opts.requests
   * @param {() => void} opts.onLeave called when the person chooses to leave
   */
  constructor({ room, requests, onLeave }) {
    this.room = room;
    this.requests = requests;
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
    el.refusedLeave.addEventListener("click", () => onLeave());
    // an answer is needed: Escape does not dismiss the prompt
    el.dialog.addEventListener("cancel", (e) => e.preventDefault());

    room.watch(["recording"], ({ previous }) => {
      this.update(("recording" in previous ? previous.recording : room.recording)?.id);
    });
    onLangChange(() => this.render());
  }

  /** Whether this person is asked for consent (not the recorder, not the one who started it). */
  get asked() {
    const me = this.room.self;
    const rec = this.room.recording;
    if (!me || !rec || me.role === "recorder") return false;
    return !(me.role === "mediator" && rec.started_by === me.id);
  }

  /**
   * The recording changed: find this person's answer to it (theirs as mediators see it,
   * else the one remembered here).
   * @param {string|undefined} before the previous recording's id
   */
  update(before) {
    const { recording, self } = this.room;
    if (!recording) {
      this.answer = null;
    } else if (recording.id !== before || this.answer === null) {
      const mine = self ? recording.consents?.[self.id] : undefined;
      this.answer = mine ? !!mine.accepted : self ? remembered(recording.id, self.id) : null;
    }
    this.render();
  }

  /**
   * Send this person's answer (`recording_consent`).
   * @param {boolean} accepted
   */
  async answerWith(accepted) {
    const rec = this.room.recording;
    if (!rec || this.sending) return;
    this.sending = true;
    this.renderButtons();
    try {
      const ack = await this.requests.request("recording_consent", {
        recording_id: rec.id,
        accepted,
      });
      if (!ack.ok) {
        this.showError(errorText(ack.error, ack.message));
        if (ack.error === "not_recording") this.room.setRecording(null);
        return;
      }
      if (this.room.recording?.id !== rec.id) return; // a new recording meanwhile
      this.answer = accepted;
      const self = this.room.self;
      if (self) remember(rec.id, self.id, accepted);
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
    const on = !!this.room.recording;
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
