/**
 * The mediator's agreement editor (a panel of the mediator console): the model's fields
 * (case number, parties with their role, ID number and who signs each line, mediator,
 * experts, facts, the agreed terms as a numbered list, how and by when they are
 * performed, date, place, language), saved as the mediator types (`agreement_draft`,
 * debounced). The live text and its fingerprint, seen by everyone, are in
 * {@link AgreementView}; "Ask for signatures" (`agreement_request_signatures`) makes the
 * text final. It renders from the {@link RoomState} (the agreement, who is in the room).
 *
 * Prefill: the server proposes the party lines from the room's invites (name, side
 * 申请人 / 被申请人, and the invite that signs the line), the mediator, and the experts
 * who came (`agreement_prefill`), so the editor is filled before the parties have joined.
 * It asks again when someone comes or goes and after an invite is made; a field the
 * mediator has changed is theirs and is left alone (a field still holding the last
 * proposal, or empty, follows the new one). Nothing is proposed once the text is final.
 *
 * @module agreement-panel
 */
import { errorText, getLang, onLangChange, t } from "./i18n.js";
import { SIDES } from "./roles.js";
import { h } from "./ui.js";

const SAVE_DELAY_MS = 600;
const $ = (id) => document.getElementById(id);

/** Split the experts field: 、 , ， ; ； or new lines. */
function splitNames(text) {
  return text
    .split(/[、,，;；\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Today's date as the agreement writes it. */
function today(lang) {
  const d = new Date();
  if (lang === "en") {
    return d.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" });
  }
  return `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日`;
}

export class AgreementPanel {
  /**
   * @param {object} opts
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./requests.js").Requests} opts.requests
   */
  constructor({ room, requests }) {
    this.room = room;
    this.requests = requests;
    this.section = $("agreement-editor");
    /** The form has been filled (from the server's draft or with defaults). */
    this.filled = false;
    /** Local edits not yet acknowledged by the server. */
    this.dirty = false;
    this.timer = 0;
    /** @type {Promise<void>|null} the save in flight */
    this.saving = null;
    this.saveAgain = false;
    // A draft that could not be saved because the connection was down is saved again
    // as soon as it is back: the mediator's typing is not left unsaved behind a message.
    this.unsent = false;
    requests.sig.on("connected", () => {
      if (this.unsent && this.dirty) this.save();
    });
    /** The fingerprint of the last version this form saved (or loaded). */
    this.lastAck = "";
    /** @type {{parties: any[], mediator: string, experts: string[], case_number?: string, facts?: string}|null} the server's proposal */
    this.proposal = null;
    /** What the last proposal put in each field (to tell the mediator's own changes). */
    this.proposed = { parties: "", mediator: "", experts: "" };
    /** The joined participants the last proposal was asked for. */
    this.proposedFor = "";
    this.build();
    room.watch(["agreement", "participants", "self"], (change) => {
      this.render();
      const here = [...room.participants.keys()].sort().join(",");
      if (change.entered || here !== this.proposedFor) {
        this.proposedFor = here;
        this.refreshPrefill();
      }
    });
    onLangChange(() => this.render());
  }

  /** @returns {import("./room-state.js").AgreementState|null} */
  get state() {
    return this.room.agreement;
  }

  // ---- the form ----

  build() {
    const field = (id, key, control) =>
      h("label.field", { for: id },
        h("span.field-label", { "data-i18n": key, text: t(key) }), control);
    const input = (id, extra = {}) =>
      h("input", { id, type: "text", autocomplete: "off", spellcheck: "false", ...extra });
    const area = (id, rows = 3) => h("textarea", { id, rows, spellcheck: "false" });

    this.el = {
      language: h("select", { id: "agreement-language" },
        h("option", { value: "zh-CN", "data-i18n": "agreement.lang.zh", text: t("agreement.lang.zh") }),
        h("option", { value: "en", "data-i18n": "agreement.lang.en", text: t("agreement.lang.en") })),
      caseNumber: input("agreement-case-number", { "data-i18n-placeholder": "agreement.case_number.placeholder", placeholder: t("agreement.case_number.placeholder") }),
      parties: h("ul", { id: "agreement-parties", class: "agreement-parties" }),
      addParty: h("button.btn.small", { type: "button", id: "agreement-add-party", "data-i18n": "agreement.add_party", text: t("agreement.add_party") }),
      mediator: input("agreement-mediator"),
      experts: input("agreement-experts", { "data-i18n-placeholder": "agreement.experts.placeholder", placeholder: t("agreement.experts.placeholder") }),
      facts: area("agreement-facts", 4),
      terms: h("ol", { id: "agreement-terms", class: "agreement-terms" }),
      addTerm: h("button.btn.small", { type: "button", id: "agreement-add-term", "data-i18n": "agreement.add_term", text: t("agreement.add_term") }),
      performance: area("agreement-performance", 2),
      date: input("agreement-date"),
      place: input("agreement-place"),
      saveState: h("p.hint.agreement-save-state", { id: "agreement-save-state", role: "status" }),
      warning: h("p.note.agreement-warning", { id: "agreement-edit-warning", hidden: true, "data-i18n": "agreement.edit_warning", text: t("agreement.edit_warning") }),
      request: h("button.btn.primary", { type: "button", id: "agreement-request", "data-i18n": "agreement.request", text: t("agreement.request") }),
      finalize: h("button.btn", { type: "button", id: "agreement-finalize", hidden: true, "data-i18n": "agreement.finalize", text: t("agreement.finalize") }),
      requestError: h("p.field-error", { id: "agreement-request-error", role: "alert", hidden: true }),
    };
    const el = this.el;
    this.fieldset = h("fieldset.agreement-fields", {},
      field("agreement-language", "agreement.language", el.language),
      field("agreement-case-number", "agreement.case_number", el.caseNumber),
      h("div.field", {},
        h("span.field-label", { "data-i18n": "agreement.parties", text: t("agreement.parties") }),
        h("p.hint", { "data-i18n": "agreement.parties.hint", text: t("agreement.parties.hint") }),
        el.parties, el.addParty),
      field("agreement-mediator", "agreement.mediator", el.mediator),
      field("agreement-experts", "agreement.experts", el.experts),
      field("agreement-facts", "agreement.facts", el.facts),
      h("div.field", {},
        h("span.field-label", { "data-i18n": "agreement.terms", text: t("agreement.terms") }),
        el.terms, el.addTerm),
      field("agreement-performance", "agreement.performance", el.performance),
      h("div.agreement-row", {},
        field("agreement-date", "agreement.date", el.date),
        field("agreement-place", "agreement.place", el.place)),
    );
    this.form = h("form.agreement-form", { id: "agreement-form", novalidate: true },
      this.fieldset, el.warning, el.saveState,
      h("div.agreement-actions", {}, el.request, el.finalize), el.requestError);
    this.section.append(this.form);

    this.form.addEventListener("submit", (e) => e.preventDefault());
    this.form.addEventListener("input", () => this.edited());
    this.form.addEventListener("change", () => this.edited());
    el.addParty.addEventListener("click", () => {
      const role = this.partyRows().length === 0 ? "applicant" : "respondent";
      el.parties.append(this.partyRow({ name: "", role }));
      el.parties.lastElementChild?.querySelector("input")?.focus();
    });
    el.addTerm.addEventListener("click", () => {
      el.terms.append(this.termRow(""));
      el.terms.lastElementChild?.querySelector("textarea")?.focus();
    });
    el.request.addEventListener("click", () => this.requestSignatures());
    el.finalize.addEventListener("click", () => this.finalize());
  }

  partyRows() {
    return [...this.el.parties.querySelectorAll("li.agreement-party")];
  }

  /** One party line: name, role, ID number (optional), who signs it. */
  partyRow(party) {
    const role = h("select", { "data-field": "role", "aria-label": t("agreement.party.role") },
      h("option", { value: "applicant", "data-i18n": "agreement.role.applicant", text: t("agreement.role.applicant") }),
      h("option", { value: "respondent", "data-i18n": "agreement.role.respondent", text: t("agreement.role.respondent") }));
    role.value = party.role || "applicant";
    const assign = h("select", { "data-field": "participant_id", "aria-label": t("agreement.party.assign") });
    const row = h("li.agreement-party", {},
      h("div.party-grid", {},
        h("label.field", {},
          h("span.field-label", { "data-i18n": "agreement.party.name", text: t("agreement.party.name") }),
          h("input", { type: "text", "data-field": "name", autocomplete: "off", spellcheck: "false", value: party.name || "" })),
        h("label.field", {},
          h("span.field-label", { "data-i18n": "agreement.party.role", text: t("agreement.party.role") }), role),
        h("label.field", {},
          h("span.field-label", { "data-i18n": "agreement.party.id_number", text: t("agreement.party.id_number") }),
          h("input", { type: "text", "data-field": "id_number", autocomplete: "off", spellcheck: "false", inputmode: "text", value: party.id_number || "" })),
        h("label.field", {},
          h("span.field-label", { "data-i18n": "agreement.party.assign", text: t("agreement.party.assign") }), assign)),
      h("button.btn.small.danger-outline", {
        type: "button",
        dataset: { action: "remove-party" },
        "data-i18n": "agreement.remove",
        text: t("agreement.remove"),
        on: { click: () => { row.remove(); this.edited(); } },
      }));
    this.fillAssignees(assign, party.participant_id || "");
    return row;
  }

  termRow(text) {
    const row = h("li.agreement-term", {},
      h("textarea", { "data-field": "term", rows: 2, spellcheck: "false", "aria-label": t("agreement.term") }),
      h("button.btn.small.danger-outline", {
        type: "button",
        dataset: { action: "remove-term" },
        "data-i18n": "agreement.remove",
        text: t("agreement.remove"),
        on: { click: () => { row.remove(); this.edited(); } },
      }));
    row.querySelector("textarea").value = text;
    return row;
  }

  /**
   * The room's parties as choices of who signs a line: those here, and those invited who
   * have not come yet (the current choice kept).
   */
  fillAssignees(select, value) {
    const parties = [...this.room.participants.values()].filter((p) => p.role === "party");
    const options = [h("option", { value: "", text: t("agreement.party.unassigned") })];
    for (const p of parties) options.push(h("option", { value: p.id, text: p.name }));
    for (const line of this.proposal?.parties || []) {
      if (parties.some((p) => p.id === line.participant_id)) continue;
      const text = t("agreement.party.invited", { name: line.name });
      options.push(h("option", { value: line.participant_id, text }));
    }
    if (value && !options.some((o) => o.value === value)) {
      const line = this.state?.signers.find((x) => x.participant_id === value);
      options.push(h("option", { value, text: t("agreement.party.away", { name: line?.name || "?" }) }));
    }
    select.replaceChildren(...options);
    select.value = value;
  }

  /** Fill the form from a draft (the server's, or defaults for a new agreement). */
  fill(draft) {
    const el = this.el;
    el.language.value = draft.language || "zh-CN";
    el.caseNumber.value = draft.case_number || "";
    el.parties.replaceChildren(...(draft.parties || []).map((p) => this.partyRow(p)));
    el.mediator.value = draft.mediator || "";
    el.experts.value = (draft.experts || []).join("、");
    el.facts.value = draft.facts || "";
    el.terms.replaceChildren(...(draft.terms?.length ? draft.terms : [""]).map((x) => this.termRow(x)));
    el.performance.value = draft.performance || "";
    el.date.value = draft.date || "";
    el.place.value = draft.place || "";
    this.filled = true;
  }

  /**
   * A new agreement: today, and until the server's proposal arrives the parties and
   * experts in the room (two empty party lines if none: 申请人, 被申请人).
   */
  defaults() {
    const people = [...this.room.participants.values()];
    const parties = people.filter((p) => p.role === "party").slice(0, 2);
    const lang = getLang() === "en" ? "en" : "zh-CN";
    return {
      language: lang,
      parties: ["applicant", "respondent"].map((role, i) => ({
        role: SIDES.includes(parties[i]?.side) ? parties[i].side : role,
        name: parties[i]?.name || "",
        participant_id: parties[i]?.id || "",
      })),
      mediator: this.room.self?.name || "",
      experts: people.filter((p) => p.role === "expert").map((p) => p.name),
      date: today(lang),
      terms: [""],
    };
  }

  // ---- the server's proposal ----

  /** Ask the server what it proposes now, and put it in the fields not the mediator's. */
  async refreshPrefill() {
    if (!this.room.isMediator) return;
    const ack = await this.requests.request("agreement_prefill", {});
    if (!ack.ok || !ack.prefill) return;
    this.proposal = ack.prefill;
    this.applyProposal();
  }

  /** The form's party lines as the proposal writes them (no ID numbers). */
  partyLines() {
    return this.partyRows().map((row) => {
      const get = (f) => row.querySelector(`[data-field="${f}"]`).value.trim();
      return { name: get("name"), role: get("role"), participant_id: get("participant_id") };
    });
  }

  applyProposal() {
    const p = this.proposal;
    const status = this.state?.status || "drafting";
    if (!p || !this.filled || status !== "drafting") return;
    const el = this.el;
    let changed = false;
    const follows = (field, current, empty) => current === this.proposed[field] || empty;

    const lines = this.partyLines();
    if (p.parties.length && follows("parties", JSON.stringify(lines), lines.every((x) => !x.name))) {
      if (JSON.stringify(lines) !== JSON.stringify(p.parties)) {
        // an ID number typed on a line stays with that person's line
        const numbers = new Map(
          this.partyRows().map((row) => [
            row.querySelector('[data-field="participant_id"]').value,
            row.querySelector('[data-field="id_number"]').value,
          ]),
        );
        el.parties.replaceChildren(
          ...p.parties.map((x) => this.partyRow({ ...x, id_number: numbers.get(x.participant_id) || "" })),
        );
        changed = true;
      }
      this.proposed.parties = JSON.stringify(this.partyLines());
    }
    const experts = p.experts.join("、");
    if (follows("experts", el.experts.value, !el.experts.value.trim())) {
      if (el.experts.value !== experts) {
        el.experts.value = experts;
        changed = true;
      }
      this.proposed.experts = experts;
    }
    if (follows("mediator", el.mediator.value, !el.mediator.value.trim())) {
      if (el.mediator.value !== p.mediator) {
        el.mediator.value = p.mediator;
        changed = true;
      }
      this.proposed.mediator = p.mediator;
    }
    // in a session of a case: its number and facts (the case's description)
    for (const [field, input] of [["case_number", el.caseNumber], ["facts", el.facts]]) {
      const value = p[field];
      if (typeof value !== "string" || !follows(field, input.value, !input.value.trim())) continue;
      if (input.value !== value) {
        input.value = value;
        changed = true;
      }
      this.proposed[field] = value;
    }
    for (const select of el.parties.querySelectorAll('select[data-field="participant_id"]')) {
      if (document.activeElement !== select) this.fillAssignees(select, select.value);
    }
    // a draft the room already sees is kept up to date; a new one is saved once the
    // mediator has given it a case number
    if (changed && this.state) this.edited();
  }

  /** The agreement_draft payload from the form (empty party names and terms left out). */
  payload() {
    const el = this.el;
    const parties = this.partyRows()
      .map((row) => {
        const get = (f) => row.querySelector(`[data-field="${f}"]`).value.trim();
        const party = { name: get("name"), role: get("role") };
        if (get("id_number")) party.id_number = get("id_number");
        if (get("participant_id")) party.participant_id = get("participant_id");
        return party;
      })
      .filter((p) => p.name);
    const terms = [...el.terms.querySelectorAll("textarea")]
      .map((x) => x.value.trim())
      .filter(Boolean);
    return {
      case_number: el.caseNumber.value.trim(),
      language: el.language.value,
      parties,
      mediator: el.mediator.value.trim(),
      experts: splitNames(el.experts.value),
      facts: el.facts.value,
      terms,
      performance: el.performance.value,
      date: el.date.value.trim(),
      place: el.place.value.trim(),
    };
  }

  // ---- saving ----

  edited() {
    this.dirty = true;
    this.setSaveState("agreement.save.pending");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), SAVE_DELAY_MS);
  }

  /** Send the form now (one request at a time; edits meanwhile are sent after). */
  async save() {
    clearTimeout(this.timer);
    if (this.saving) {
      this.saveAgain = true;
      return this.saving;
    }
    const payload = this.payload();
    if (!payload.case_number) {
      this.setSaveState("agreement.save.need_case_number", "warn");
      return;
    }
    this.saving = (async () => {
      this.setSaveState("agreement.save.saving");
      this.dirty = false;
      const ack = await this.requests.request("agreement_draft", payload);
      if (ack.ok) {
        this.unsent = false;
        this.lastAck = ack.fingerprint;
        this.setSaveState("agreement.save.saved", "ok", { fp: ack.fingerprint.slice(0, 12) });
      } else {
        this.dirty = true;
        this.unsent = ack.error === "network" || ack.error === "timeout";
        this.setSaveState(null, "error", {}, errorText(ack.error, ack.message));
      }
    })();
    try {
      await this.saving;
    } finally {
      this.saving = null;
    }
    if (this.saveAgain) {
      this.saveAgain = false;
      await this.save();
    }
  }

  setSaveState(key, kind = "", vars = {}, text = "") {
    const s = this.el.saveState;
    s.dataset.kind = kind;
    if (key) {
      s.dataset.i18nKey = key;
      s.textContent = t(key, vars);
    } else {
      delete s.dataset.i18nKey;
      s.textContent = text;
    }
  }

  async requestSignatures() {
    const el = this.el;
    el.requestError.hidden = true;
    if (el.request.disabled) return;
    el.request.disabled = true;
    try {
      if (this.dirty || this.saving) await this.save();
      const state = this.state;
      if (!state) {
        this.showRequestError(t("agreement.save.need_case_number"));
        return;
      }
      const ack = await this.requests.request("agreement_request_signatures", {
        fingerprint: state.fingerprint,
      });
      if (!ack.ok) this.showRequestError(errorText(ack.error, ack.message));
    } finally {
      el.request.disabled = false;
      this.render();
    }
  }

  async finalize() {
    const ack = await this.requests.request("agreement_finalize", {});
    if (!ack.ok) this.showRequestError(errorText(ack.error, ack.message));
  }

  showRequestError(text) {
    this.el.requestError.hidden = !text;
    this.el.requestError.textContent = text;
  }

  // ---- rendering ----

  render() {
    const on = this.room.isMediator;
    this.section.hidden = !on;
    if (!on) return;
    const state = this.state;
    if (!this.filled) {
      if (state) {
        this.fill(state.draft);
        this.lastAck = state.fingerprint;
      } else if (this.room.participants.size) {
        this.fill(this.defaults());
        // the defaults are a proposal too: the server's replaces them
        this.proposed = {
          parties: JSON.stringify(this.partyLines()),
          mediator: this.el.mediator.value,
          experts: this.el.experts.value,
        };
      }
      this.applyProposal();
    } else if (state && !this.dirty && !this.saving && state.fingerprint !== this.lastAck) {
      // a version this form did not send: another mediator's, or the final text
      this.fill(state.draft);
      this.lastAck = state.fingerprint;
    }
    for (const select of this.el.parties.querySelectorAll('select[data-field="participant_id"]')) {
      if (document.activeElement !== select) this.fillAssignees(select, select.value);
    }
    const status = state?.status || "drafting";
    const final = status === "sealing" || status === "signed";
    this.fieldset.disabled = final;
    const anySigned = !!state?.signers.some((x) => x.signed_at);
    this.el.warning.hidden = !(anySigned && !final);
    this.el.request.hidden = status !== "drafting";
    this.el.finalize.hidden = !(status === "signing" && state?.seal_error);
    if (this.el.saveState.dataset.i18nKey) {
      this.el.saveState.textContent = t(this.el.saveState.dataset.i18nKey, {
        fp: state?.fingerprint.slice(0, 12) || "",
      });
    }
  }
}
