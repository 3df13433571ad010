/**
 * The signing dialog: read the final text, tick consent, type your name, draw your
 * handwritten mark on a canvas (finger, pen or mouse: pointer events), sign. Also which
 * signer line this participant may sign now ({@link signingLine}).
 *
 * The whole text is shown in the dialog's own flow, at reading size, with sums of money
 * marked; there is no small box to scroll. Signing needs the reader to have reached the
 * end of the text (`#agreement-sign-end`, seen on screen: an IntersectionObserver), so
 * the consent ("I have read the whole text") is not a click past an unread text. The
 * version fingerprint stands at the end of the text, not inside the consent sentence;
 * the name field is empty (no grey name that looks filled in), the name expected is
 * said beside it.
 *
 * What is sent (`agreement_sign`) binds the fingerprint of the text shown in the dialog,
 * the one the signer read. If the mediator changes the text meanwhile, the dialog says so
 * and keeps showing what was read; signing it is refused by the server
 * (`agreement_outdated`) until the signer loads and reads the new version. Who signs is
 * never sent: the server knows it from the connection.
 *
 * @module agreement-sign
 */
import { errorText, t } from "./i18n.js";
import { charCount, h, toast } from "./ui.js";

/** The server refuses marks above 200 KiB of PNG (server/agreements/marks.py). */
const MAX_MARK_BYTES = 200 * 1024;
const NAME_MAX = 100;
const INK = "#10243a";

const $ = (id) => document.getElementById(id);

/** @typedef {import("./room-state.js").AgreementState} AgreementState */
/** @typedef {import("./room-state.js").Signer} Signer */

/**
 * The signer line this participant signs now, or none (with the reason key to show).
 * Parties sign the line assigned to them, then a mediator the mediator line.
 * @param {AgreementState|null} s
 * @param {import("./room-state.js").Participant|null} me
 * @returns {{line: Signer|null, reason: string}}
 */
export function signingLine(s, me) {
  if (!s || !me) return { line: null, reason: "" };
  const signed = (x) => x.signed_at !== null && x.signed_at !== undefined;
  let line = null;
  if (me.role === "party") {
    line = s.signers.find((x) => x.role !== "mediator" && x.participant_id === me.id) || null;
    if (!line) return { line: null, reason: "" };
  } else if (me.role === "mediator") {
    line = s.signers.find((x) => x.role === "mediator") || null;
  } else {
    return { line: null, reason: "" };
  }
  if (s.status !== "signing") return { line: null, reason: "" };
  if (signed(line)) return { line: null, reason: "agreement.sign.done" };
  if (me.role === "mediator") {
    const waiting = s.signers.filter((x) => x.role !== "mediator" && !signed(x));
    if (waiting.length) return { line: null, reason: "agreement.sign.wait_parties" };
  }
  return { line, reason: "" };
}

export class SignDialog {
  /**
   * @param {object} opts
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./requests.js").Requests} opts.requests
   */
  constructor({ room, requests }) {
    this.room = room;
    this.requests = requests;
    /** @type {AgreementState|null} the version on show */
    this.shown = null;
    /** @type {Signer|null} */
    this.line = null;
    this.busy = false;
    this.el = {
      dialog: /** @type {HTMLDialogElement} */ ($("agreement-sign-dialog")),
      title: $("agreement-sign-title"),
      form: $("agreement-sign-form"),
      as: $("agreement-sign-as"),
      changed: $("agreement-sign-changed"),
      reload: $("agreement-sign-reload"),
      fingerprint: $("agreement-sign-fingerprint"),
      text: $("agreement-sign-text"),
      end: $("agreement-sign-end"),
      readHint: $("agreement-sign-read-hint"),
      consent: /** @type {HTMLInputElement} */ ($("agreement-consent")),
      consentLabel: $("agreement-consent-label"),
      name: /** @type {HTMLInputElement} */ ($("agreement-sign-name")),
      nameHint: $("agreement-sign-name-hint"),
      canvas: /** @type {HTMLCanvasElement} */ ($("agreement-mark")),
      pad: $("agreement-mark-pad"),
      clear: $("agreement-mark-clear"),
      error: $("agreement-sign-error"),
      cancel: $("agreement-sign-cancel"),
      submit: $("agreement-sign-submit"),
    };
    this.pad = new MarkPad(this.el.canvas, () => {
      this.el.pad.classList.toggle("inked", this.pad.inked);
      this.showError("");
    });
    const { el } = this;
    el.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    el.cancel.addEventListener("click", () => el.dialog.close());
    el.clear.addEventListener("click", () => this.pad.clear());
    el.reload.addEventListener("click", () => this.reload());
    el.consent.addEventListener("change", () => this.showError(""));
    el.dialog.addEventListener("close", () => {
      this.shown = null;
      this.line = null;
    });
    /** The reader has seen the end of the version on show. */
    this.readToEnd = false;
    new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) this.reachedEnd();
      },
      { root: el.dialog },
    ).observe(el.end);
  }

  /** The end of the text has been on screen. */
  reachedEnd() {
    if (!this.shown || this.readToEnd) return;
    this.readToEnd = true;
    this.el.dialog.dataset.read = "true";
    this.el.readHint.hidden = true;
    if (this.el.error.dataset.reason === "need_read") this.showError("");
  }

  /** Whether the end of the text is on screen now (the observer may not have run yet). */
  endInView() {
    const end = this.el.end.getBoundingClientRect();
    const box = this.el.dialog.getBoundingClientRect();
    return end.height > 0 && end.top < box.bottom && end.bottom > box.top;
  }

  get isOpen() {
    return this.el.dialog.open;
  }

  /**
   * Open for `line` of agreement version `state`.
   * @param {AgreementState} state
   * @param {Signer} line
   */
  open(state, line) {
    const { el } = this;
    this.line = line;
    this.showVersion(state);
    el.name.value = "";
    el.name.maxLength = NAME_MAX;
    this.showError("");
    if (typeof el.dialog.showModal === "function" && !el.dialog.open) el.dialog.showModal();
    else el.dialog.setAttribute("open", "");
    el.dialog.scrollTop = 0;
    this.pad.resize();
    this.pad.clear();
    el.title.tabIndex = -1; // start reading at the top (screen readers too)
    el.title.focus({ preventScroll: true });
  }

  /** Show (and from now on sign) version `state`. */
  showVersion(state) {
    const { el } = this;
    this.shown = state;
    const fp = state.fingerprint.slice(0, 12);
    el.fingerprint.textContent = fp;
    el.fingerprint.title = state.fingerprint;
    el.text.replaceChildren(...withMoneyMarked(state.text));
    el.dialog.scrollTop = 0;
    el.changed.hidden = true;
    el.consent.checked = false;
    this.readToEnd = false;
    delete el.dialog.dataset.read;
    el.readHint.hidden = false;
    const line = this.line;
    el.as.textContent = line
      ? t("agreement.sign.as", { name: line.name, role: t(`agreement.role.${line.role}`) })
      : "";
    el.consentLabel.textContent = t("agreement.sign.consent");
    el.nameHint.textContent = line ? t("agreement.sign.name_hint", { name: line.name }) : "";
  }

  /** A new agreement_state arrived: tell a signer who is reading an older version. */
  onState(state) {
    if (!this.isOpen || !this.shown) return;
    if (state.status === "signed" || state.status === "sealing") {
      if (this.line) {
        const mine = state.signers.find(
          (x) => x.role === this.line.role && x.party_index === this.line.party_index,
        );
        if (mine?.signed_at) this.el.dialog.close();
      }
      return;
    }
    this.el.changed.hidden = state.fingerprint === this.shown.fingerprint;
  }

  reload() {
    const state = this.room.agreement;
    const { line } = signingLine(state, this.room.self);
    if (!state || !line) {
      this.el.dialog.close();
      return;
    }
    this.line = line;
    this.showVersion(state);
    this.showError("");
  }

  /**
   * @param {string} text
   * @param {string} [reason] which check refused (data-reason, for tests and styling)
   */
  showError(text, reason = "") {
    this.el.error.hidden = !text;
    this.el.error.textContent = text;
    if (reason) this.el.error.dataset.reason = reason;
    else delete this.el.error.dataset.reason;
  }

  async submit() {
    if (this.busy || !this.shown) return;
    const { el } = this;
    const name = el.name.value.trim().replace(/\s+/g, " ");
    if (!this.readToEnd && this.endInView()) this.reachedEnd();
    if (!this.readToEnd) return this.showError(t("agreement.sign.need_read"), "need_read");
    if (!el.consent.checked) return this.showError(t("agreement.sign.need_consent"));
    if (!name || charCount(name) > NAME_MAX) {
      el.name.focus();
      return this.showError(t("agreement.sign.need_name"));
    }
    if (!this.pad.inked) return this.showError(t("agreement.sign.need_mark"));
    const mark = this.pad.toDataURL();
    if (!mark) return this.showError(t("reason.mark_too_large"));
    this.busy = true;
    el.submit.disabled = true;
    try {
      const ack = await this.requests.request("agreement_sign", {
        fingerprint: this.shown.fingerprint,
        consent: true,
        name,
        mark,
      });
      if (ack.ok) {
        el.dialog.close();
        toast(t("agreement.sign.thanks"));
        return;
      }
      if (ack.error === "agreement_outdated") el.changed.hidden = false;
      this.showError(errorText(ack.error, ack.message));
    } finally {
      this.busy = false;
      el.submit.disabled = false;
    }
  }
}

/**
 * A canvas to write on with a finger, pen or mouse. Keeps the strokes so it can redraw
 * them at a new size.
 */
export class MarkPad {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {() => void} onChange
   */
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.onChange = onChange;
    /** @type {{x: number, y: number}[][]} strokes in CSS pixels */
    this.strokes = [];
    this.active = null;
    this.pointerId = null;
    canvas.style.touchAction = "none"; // no scrolling or zooming while writing
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
    window.addEventListener("resize", () => this.resize());
  }

  get inked() {
    return this.strokes.some((s) => s.length > 0);
  }

  /** Match the canvas's pixels to its size on screen (and the screen's density). */
  resize() {
    const rect = this.canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    const ratio = Math.min(window.devicePixelRatio || 1, 2);
    this.scale = ratio;
    this.canvas.width = Math.round(rect.width * ratio);
    this.canvas.height = Math.round(rect.height * ratio);
    this.redraw();
  }

  clear() {
    this.strokes = [];
    this.active = null;
    this.redraw();
    this.onChange();
  }

  point(e) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  down(e) {
    if (this.pointerId !== null) return;
    e.preventDefault();
    this.pointerId = e.pointerId;
    try {
      this.canvas.setPointerCapture(e.pointerId);
    } catch {
      /* synthetic events */
    }
    this.active = [this.point(e)];
    this.strokes.push(this.active);
    this.redraw();
  }

  move(e) {
    if (e.pointerId !== this.pointerId || !this.active) return;
    e.preventDefault();
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) this.active.push(this.point(ev));
    this.redraw();
  }

  up(e) {
    if (e.pointerId !== this.pointerId) return;
    this.pointerId = null;
    this.active = null;
    this.onChange();
  }

  redraw() {
    const ctx = this.canvas.getContext("2d");
    const s = this.scale || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(s, 0, 0, s, 0, 0);
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineWidth = 2.6;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const stroke of this.strokes) {
      if (stroke.length === 1) {
        ctx.beginPath();
        ctx.arc(stroke[0].x, stroke[0].y, 1.6, 0, Math.PI * 2);
        ctx.fill();
        continue;
      }
      ctx.beginPath();
      ctx.moveTo(stroke[0].x, stroke[0].y);
      for (const p of stroke.slice(1)) ctx.lineTo(p.x, p.y);
      ctx.stroke();
    }
  }

  /**
   * The mark as a PNG data URL (transparent background), at most 200 KiB: drawn again
   * at a lower density if need be. "" if it cannot be made small enough.
   */
  toDataURL() {
    let url = this.canvas.toDataURL("image/png");
    if (dataUrlBytes(url) <= MAX_MARK_BYTES) return url;
    const rect = this.canvas.getBoundingClientRect();
    const small = h("canvas", { width: Math.round(rect.width), height: Math.round(rect.height) });
    small.getContext("2d").drawImage(this.canvas, 0, 0, small.width, small.height);
    url = small.toDataURL("image/png");
    return dataUrlBytes(url) <= MAX_MARK_BYTES ? url : "";
  }
}

/**
 * Sums of money in an agreement's text: an amount with 元 / 万元, or after 人民币 / RMB /
 * CNY / ¥ (digits, Chinese-style separators and decimals).
 */
const MONEY =
  /(?:人民币|RMB|CNY|[¥￥])\s?[0-9][0-9,，.]*(?:\s?(?:万元|元|yuan))?|[0-9][0-9,，.]*\s?(?:万元|元)/g;

/**
 * The text as nodes, every sum of money in a `<mark class="money">` (text only, never
 * markup: the agreement is what people typed).
 * @param {string} text
 * @returns {Node[]}
 */
export function withMoneyMarked(text) {
  const nodes = [];
  let at = 0;
  for (const m of text.matchAll(MONEY)) {
    if (m.index > at) nodes.push(document.createTextNode(text.slice(at, m.index)));
    nodes.push(h("mark.money", { text: m[0] }));
    at = m.index + m[0].length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

function dataUrlBytes(url) {
  const b64 = url.slice(url.indexOf(",") + 1);
  return Math.floor((b64.length * 3) / 4);
}
