/**
 * The agreement as everyone in the room sees it: the current text, live, with its version
 * fingerprint (the first 12 hex characters of the sha256 of the text), who has signed,
 * the status (drafting / signing / sealing / signed), the button that opens the signing
 * dialog for whoever may sign now, and the download of the signed PDF.
 *
 * State comes from the server's `agreement_state` notifications (docs/PROTOCOL.md,
 * "Agreement"); the mediator's editor is {@link AgreementPanel}.
 *
 * @module agreement-view
 */
import { ApiError, downloadAgreementPdf } from "./api.js";
import { t, onLangChange } from "./i18n.js";
import { SignDialog } from "./agreement-sign.js";
import { h, toast } from "./ui.js";

/** How many hex characters of a fingerprint people are shown. */
export const FINGERPRINT_SHOWN = 12;

/**
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
 */

const $ = (id) => document.getElementById(id);

/** The short form of a fingerprint that people compare. */
export function shortFingerprint(fp) {
  return (fp || "").slice(0, FINGERPRINT_SHOWN);
}

/** The signer role's label in the UI language. */
export function signerRole(role) {
  return t(`agreement.role.${role}`);
}

export class AgreementView extends EventTarget {
  /**
   * @param {object} opts
   * @param {import("./room-view.js").RoomView} opts.view
   * @param {string} opts.token this participant's invite token (downloads the PDF)
   */
  constructor({ view, token }) {
    super();
    this.view = view;
    this.token = token;
    /** @type {AgreementState|null} */
    this.state = null;
    this.el = {
      card: $("agreement-card"),
      status: $("agreement-status"),
      fingerprint: $("agreement-fingerprint"),
      text: $("agreement-text"),
      signers: $("agreement-signers"),
      signButton: $("agreement-sign-open"),
      signHint: $("agreement-sign-hint"),
      sealing: $("agreement-sealing"),
      done: $("agreement-done"),
      download: $("agreement-download"),
      pdfFingerprint: $("agreement-pdf-fingerprint"),
      statusLink: $("agreement-status-link"),
      empty: $("agreement-empty"),
    };
    this.dialog = new SignDialog({ view: this });
    this.el.signButton.addEventListener("click", () => this.openSign());
    this.el.download.addEventListener("click", () => this.download());
    view.sig.on("agreement_state", (state) => this.onState(state));
    onLangChange(() => this.render());
  }

  /** @param {AgreementState} state */
  onState(state) {
    if (!state || typeof state.fingerprint !== "string") return;
    const before = this.state;
    this.state = state;
    if (before && before.status !== "signed" && state.status === "signed") {
      toast(t("agreement.toast.signed"));
    }
    this.render();
    this.dialog.onState(state);
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  /** The signer line this participant signs now, or null (with the reason key). */
  mySigning() {
    const s = this.state;
    const me = this.view.self;
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

  openSign() {
    const { line } = this.mySigning();
    if (line && this.state) this.dialog.open(this.state, line);
  }

  async download() {
    const s = this.state;
    if (!s?.pdf_ready || this.el.download.disabled) return;
    this.el.download.disabled = true;
    try {
      await downloadAgreementPdf(this.token, s.code);
    } catch (e) {
      const code = e instanceof ApiError ? e.code : "unknown";
      toast(this.view.errorText(code, e?.message), "error");
    } finally {
      this.el.download.disabled = false;
    }
  }

  render() {
    const { el } = this;
    const s = this.state;
    el.card.hidden = !this.view.self;
    el.empty.hidden = !!s;
    for (const x of [el.status, el.fingerprint, el.text, el.signers]) x.hidden = !s;
    if (!s) {
      el.signButton.hidden = true;
      el.signHint.hidden = true;
      el.sealing.hidden = true;
      el.done.hidden = true;
      delete el.card.dataset.status;
      return;
    }
    el.card.dataset.status = s.status;
    el.card.dataset.fingerprint = s.fingerprint;
    el.status.textContent = t(`agreement.status.${s.status}`);
    el.status.dataset.status = s.status;
    el.fingerprint.textContent = t("agreement.fingerprint", { fp: shortFingerprint(s.fingerprint) });
    el.fingerprint.title = s.fingerprint;
    if (el.text.textContent !== s.text) el.text.textContent = s.text;

    el.signers.replaceChildren(...s.signers.map((x) => this.signerItem(x)));

    const { line, reason } = this.mySigning();
    el.signButton.hidden = !line;
    el.signButton.textContent = t("agreement.sign.open");
    el.signHint.hidden = !reason;
    if (reason) el.signHint.textContent = t(reason);

    el.sealing.hidden = s.status !== "sealing";
    const downloads = ["party", "mediator"].includes(this.view.self?.role);
    el.done.hidden = s.status !== "signed";
    el.download.hidden = !downloads || !s.pdf_ready;
    el.download.textContent = t("agreement.download");
    el.pdfFingerprint.textContent = s.pdf_sha256 || "";
    el.statusLink.href = s.status_url;
    el.statusLink.textContent = t("agreement.status_page");
  }

  /** @param {Signer} x */
  signerItem(x) {
    const done = x.signed_at !== null && x.signed_at !== undefined;
    const assignee = x.participant_id ? this.view.participants.get(x.participant_id) : null;
    let state;
    if (done) {
      state = t("agreement.signer.signed", { time: formatTime(x.signed_at) });
    } else if (x.role !== "mediator" && !x.participant_id) {
      state = t("agreement.signer.unassigned");
    } else {
      state = t("agreement.signer.pending");
    }
    return h(
      "li.signer",
      {
        dataset: {
          role: x.role,
          signed: String(done),
          participantId: x.participant_id || "",
        },
        class: done ? "signed" : "",
      },
      h("span.signer-mark", { "aria-hidden": "true", text: done ? "✓" : "…" }),
      h("span.signer-main", {},
        h("span.signer-name", { text: x.name || "—" }),
        h("span.badge", { text: signerRole(x.role) }),
        assignee && assignee.name !== x.name
          ? h("span.hint", { text: t("agreement.signer.by", { name: assignee.name }) })
          : null),
      h("span.signer-state", { text: state }),
    );
  }
}

/** A Unix time as local date and time. */
export function formatTime(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
