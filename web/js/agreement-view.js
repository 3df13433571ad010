/**
 * The agreement as everyone in the room sees it: the current text, live, with its version
 * fingerprint (the first 12 hex characters of the sha256 of the text), who has signed,
 * the status (drafting / signing / sealing / signed), the button that opens the signing
 * dialog for whoever may sign now, and the download of the signed PDF.
 *
 * When signing starts and it is this person's turn (a party's line, then the mediator's),
 * they are told: a banner in the room's header (`#signing-banner`, seen wherever they
 * have scrolled) with a "go to signing" button, a chime, and for a party the page
 * scrolls to the sign button at once (on a phone it is far below the videos). The banner
 * stays until they have signed; the chime and the scroll come once per turn.
 *
 * It renders the {@link RoomState}'s agreement (the server's `agreement_state`
 * notifications, docs/PROTOCOL.md, "Agreement"); the mediator's editor is
 * {@link AgreementPanel}, the signing dialog {@link SignDialog}.
 *
 * @module agreement-view
 */
import { ApiError, downloadAgreementPdf } from "./api.js";
import { errorText, t, onLangChange } from "./i18n.js";
import { SignDialog, signingLine } from "./agreement-sign.js";
import { chime } from "./chime.js";
import { ICONS } from "./icons.js";
import { h, toast } from "./ui.js";

/** How many hex characters of a fingerprint people are shown. */
export const FINGERPRINT_SHOWN = 12;

const $ = (id) => document.getElementById(id);

/** The short form of a fingerprint that people compare. */
export function shortFingerprint(fp) {
  return (fp || "").slice(0, FINGERPRINT_SHOWN);
}

/** The signer role's label in the UI language. */
export function signerRole(role) {
  return t(`agreement.role.${role}`);
}

export class AgreementView {
  /**
   * @param {object} opts
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./requests.js").Requests} opts.requests
   * @param {string} opts.token this participant's invite token (downloads the PDF)
   * @param {import("./console-tabs.js").ConsoleTabs} opts.tabs
   */
  constructor({ room, requests, token, tabs }) {
    this.room = room;
    this.token = token;
    this.tabs = tabs;
    /** The turn to sign last announced (fingerprint and line), "" when none. */
    this.announced = "";
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
      banner: $("signing-banner"),
      bannerText: $("signing-banner-text"),
      bannerGo: $("signing-banner-go"),
    };
    this.el.banner.querySelector(".banner-icon").innerHTML = ICONS.sign; // constant markup
    this.dialog = new SignDialog({ room, requests });
    this.el.signButton.addEventListener("click", () => this.openSign());
    this.el.bannerGo.addEventListener("click", () => this.goToSign());
    this.dialog.el.dialog.addEventListener("close", () => this.announce());
    this.el.download.addEventListener("click", () => this.download());
    room.watch(["agreement", "self", "participants"], (change) => {
      const before = change.previous.agreement;
      const state = room.agreement;
      if (change.parts.has("agreement") && before && before.status !== "signed" && state?.status === "signed") {
        toast(t("agreement.toast.signed"));
      }
      this.render();
      if (change.parts.has("agreement") && state) this.dialog.onState(state);
      this.announce();
    });
    onLangChange(() => this.render());
  }

  openSign() {
    const state = this.room.agreement;
    const { line } = signingLine(state, this.room.self);
    if (line && state) {
      this.dialog.open(state, line);
      this.el.banner.hidden = true;
    }
  }

  /**
   * Tell this person when it is their turn to sign: the banner while it is, and once
   * per turn the chime and (parties) the scroll to the sign button.
   */
  announce() {
    const s = this.room.agreement;
    const me = this.room.self;
    const { line } = signingLine(s, me);
    const turn = line && s ? `${s.fingerprint}:${line.role}:${line.party_index}` : "";
    const mediator = me?.role === "mediator";
    this.el.banner.hidden = !turn || this.dialog.isOpen;
    this.el.bannerText.textContent = t(mediator ? "agreement.banner.mediator" : "agreement.banner.party");
    if (turn && turn !== this.announced) {
      chime();
      // a party is taken there at once; a mediator, busy in the console, by the banner
      if (!mediator) this.goToSign();
    }
    this.announced = turn;
  }

  /** Show the sign button: the agreement tab for a mediator, scrolled into view. */
  goToSign() {
    this.tabs.show("agreement");
    const button = this.el.signButton;
    if (button.hidden) return;
    button.scrollIntoView({ block: "center" });
    button.focus({ preventScroll: true });
  }

  async download() {
    const s = this.room.agreement;
    if (!s?.pdf_ready || this.el.download.disabled) return;
    this.el.download.disabled = true;
    try {
      await downloadAgreementPdf(this.token, s.code);
    } catch (e) {
      const code = e instanceof ApiError ? e.code : "unknown";
      toast(errorText(code, e?.message), "error");
    } finally {
      this.el.download.disabled = false;
    }
  }

  render() {
    const { el, room } = this;
    const s = room.agreement;
    el.card.hidden = !room.self;
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

    const { line, reason } = signingLine(s, room.self);
    el.signButton.hidden = !line;
    el.signButton.textContent = t("agreement.sign.open");
    el.bannerText.textContent = t(
      room.self?.role === "mediator" ? "agreement.banner.mediator" : "agreement.banner.party",
    );
    el.signHint.hidden = !reason;
    if (reason) el.signHint.textContent = t(reason);

    el.sealing.hidden = s.status !== "sealing";
    const downloads = ["party", "mediator"].includes(room.self?.role);
    el.done.hidden = s.status !== "signed";
    el.download.hidden = !downloads || !s.pdf_ready;
    el.download.textContent = t("agreement.download");
    el.pdfFingerprint.textContent = s.pdf_sha256 || "";
    el.statusLink.href = s.status_url;
    el.statusLink.textContent = t("agreement.status_page");
  }

  /** @param {import("./room-state.js").Signer} x */
  signerItem(x) {
    const done = x.signed_at !== null && x.signed_at !== undefined;
    const assignee = x.participant_id ? this.room.participants.get(x.participant_id) : null;
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
