/**
 * The staff page's cases (docs/CASES.md): the coordinator's queue, the mediator's inbox,
 * staff intake, and the sessions of a case in mediation.
 *
 * - queue (coordinator, admin): the cases their role reads (`GET /api/cases`), filtered
 *   by state, dispute type, region (and below) and overdue; accept, dispatch to an
 *   organisation or a mediator (`GET /api/case-staff`), return with a reason;
 * - inbox (mediator): the cases given to them, or waiting in their organisation for a
 *   mediator: take, return with a reason, close with an outcome, and for a case in
 *   mediation its sessions: schedule one (date, time, experts from the pool), enter its
 *   room as the mediator, and the outbox (each person's link, with copy);
 * - intake (coordinator, mediator, admin): register a case.
 *
 * Every action is offered only when the server lists it in the case's `actions`.
 *
 * Contract with tests: `#cases-section` (queue) with `#case-filters` (`#filter-state`,
 * `#filter-type`, `#filter-region`, `#filter-overdue`), `#case-list`, `#cases-count`,
 * `#cases-empty`; `#inbox-section` with `#inbox-list`, `#inbox-count`, `#inbox-empty`;
 * `#case-new` (`details`) holding `#case-form` (`#case-source`, `#case-type`,
 * `#case-region`, `#case-description`, `#case-applicant-name`, `#case-applicant-phone`,
 * `#case-respondent-name`, `#case-respondent-phone`, `#case-error`, `#case-create`).
 * Each case is `article.case-card[data-case-id][data-state][data-overdue]` with
 * `.case-card-number`, `.case-state`, and the actions as
 * `button[data-action="accept"|"take"]`, `form.case-dispatch` (`select[name="target"]`
 * of `org:<id>` / `mediator:<id>`, `button[data-action="dispatch"]`),
 * `details.case-return` (`textarea[name="reason"]`, `button[data-action="return"]`),
 * `form.case-close` (`select[name="outcome"]`, `button[data-action="close"]`) and
 * `details.case-sessions[data-loaded]` (`form.case-schedule` with `input[name="scheduled_at"]`,
 * `input[name="expert"]` checkboxes, `button[data-action="schedule"]`;
 * `li.case-session[data-session-id]` with `button[data-action="enter"]`;
 * `li.outbox-message[data-role][data-side]` with `input.invite-url` and
 * `button[data-action="copy"]`).
 *
 * @module staff-cases
 */
import { getLang, onLangChange, t } from "./i18n.js";
import { h, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const STATES = [
  "reported",
  "accepted",
  "dispatched",
  "mediating",
  "succeeded",
  "failed",
  "withdrawn",
  "following_up",
  "closed",
];
const SOURCES = ["grid_worker", "mediator", "police_110", "court", "resident"];

/** The states after mediation: follow-ups (回访) and, after 调解成功, the court (司法确认). */
const AFTER_STATES = new Set(["succeeded", "failed", "withdrawn", "following_up", "closed"]);
/** [value the API takes, i18n key] */
const METHODS = [["电话", "phone"], ["上门", "visit"], ["视频", "video"], ["其他", "other"]];
const PERFORMANCE = [["履行中", "performing"], ["已履行", "performed"], ["未履行", "not_performed"], ["部分履行", "partly"]];
const ANSWERS = ["accepted", "confirmed", "refused"];

function when(seconds, withTime = true) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleString(getLang(), {
    dateStyle: "medium",
    ...(withTime ? { timeStyle: "short" } : {}),
  });
}

/** A datetime-local value (the browser's zone) for a time `hours` ahead, on the hour. */
function localInput(hoursAhead) {
  const d = new Date(Date.now() + hoursAhead * 3600 * 1000);
  d.setMinutes(0, 0, 0);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:00`;
}

/** Copy `text`: the Clipboard API, else a selection of `input` for the user to copy. */
async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}

/** Regions as options: every level, indented by its depth. */
function regionOptions(regions, depth = 0, out = []) {
  for (const region of regions || []) {
    out.push({ code: region.code, name: `${"　".repeat(depth)}${region.name}` });
    regionOptions(region.children, depth + 1, out);
  }
  return out;
}

export class CasesPanel {
  /**
   * @param {object} opts
   * @param {{id: string, roles: string[], organisation_id: string}} opts.account
   * @param {(method: string, path: string, payload?: object) => Promise<any>} opts.call
   * @param {(e: unknown) => string} opts.errorText
   */
  constructor({ account, call, errorText, fetchRaw }) {
    this.account = account;
    this.call = call;
    /** a request whose answer is a file (the court bundle ZIP) */
    this.fetchRaw = fetchRaw;
    /** case id -> {followUps, court} once its 回访 / 司法确认 panel was opened */
    this.aftercare = new Map();
    this.errorText = errorText;
    this.roles = new Set(account.roles);
    this.queue = this.roles.has("coordinator") || this.roles.has("admin");
    this.inbox = this.roles.has("mediator");
    /** @type {any[]} */
    this.queued = [];
    /** @type {any[]} */
    this.mine = [];
    this.options = { dispute_types: [], regions: [], sources: [] };
    this.directory = { organisations: [], mediators: [] };
    this.experts = [];
    /** case id -> {sessions, messages} once its sessions were opened */
    this.sessions = new Map();
    /** cases whose sessions panel is open */
    this.open = new Set();
    /** case id -> its schedule form, kept across renders (what was typed stays) */
    this.forms = new Map();
    /** how many loads were started: only the newest one may render */
    this.loads = 0;
  }

  async start() {
    const [options, directory, experts] = await Promise.allSettled([
      this.call("GET", "/api/case-options"),
      this.call("GET", "/api/case-staff"),
      this.call("GET", "/api/experts?available=true"),
    ]);
    if (options.status === "fulfilled") this.options = options.value;
    if (directory.status === "fulfilled") this.directory = directory.value;
    if (experts.status === "fulfilled") this.experts = experts.value.experts;
    if (this.queue) {
      $("cases-section").hidden = false;
      this.fillFilters();
      for (const id of ["filter-state", "filter-type", "filter-region", "filter-overdue"]) {
        $(id).addEventListener("change", () => this.load());
      }
    }
    if (this.inbox) $("inbox-section").hidden = false;
    if (this.queue || this.inbox) {
      $("case-new").hidden = false;
      this.fillIntake();
      $("case-form").addEventListener("submit", (e) => {
        e.preventDefault();
        this.register();
      });
    }
    onLangChange(() => {
      if (this.queue) this.fillFilters(true);
      this.fillIntake(true);
      this.forms.clear(); // made again in the new language
      this.render();
    });
    await this.load();
  }

  typeName(type) {
    const found = this.options.dispute_types.find((x) => x.code === type.code);
    return getLang() === "en" && found?.name_en ? found.name_en : type.name;
  }

  // -- forms -----------------------------------------------------------------------------
  fillFilters(keep = false) {
    const fill = (select, first, items) => {
      const value = keep ? select.value : "";
      select.replaceChildren(new Option(first, ""), ...items.map(([v, text]) => new Option(text, v)));
      select.value = value;
    };
    fill($("filter-state"), t("staff.cases.filter.all_states"), STATES.map((s) => [s, t(`case.state.${s}`)]));
    fill(
      $("filter-type"),
      t("staff.cases.filter.all_types"),
      this.options.dispute_types.map((x) => [x.code, getLang() === "en" && x.name_en ? x.name_en : x.name]),
    );
    fill($("filter-region"), t("staff.cases.filter.all_regions"), regionOptions(this.options.regions).map((r) => [r.code, r.name]));
  }

  fillIntake(keep = false) {
    const fill = (select, items, first) => {
      const value = keep ? select.value : "";
      const options = items.map(([v, text]) => new Option(text, v));
      select.replaceChildren(...(first ? [new Option(first, "")] : []), ...options);
      if (value) select.value = value;
    };
    fill($("case-source"), SOURCES.map((s) => [s, t(`case.source.${s}`)]));
    fill(
      $("case-type"),
      this.options.dispute_types.map((x) => [x.code, getLang() === "en" && x.name_en ? x.name_en : x.name]),
      t("staff.case.choose"),
    );
    fill($("case-region"), regionOptions(this.options.regions).map((r) => [r.code, r.name]), t("staff.case.choose"));
  }

  // -- loading ---------------------------------------------------------------------------
  /** Loads the queue and the inbox; a newer load (a filter changed again) wins over an older one. */
  async load() {
    const generation = ++this.loads;
    const tasks = [];
    let queued = this.queued;
    let mine = this.mine;
    if (this.queue) {
      const query = new URLSearchParams({ limit: "100" });
      const state = $("filter-state").value;
      const type = $("filter-type").value;
      const region = $("filter-region").value;
      if (state) query.set("state", state);
      if (type) query.set("dispute_type", type);
      if (region) query.set("region", region);
      if ($("filter-overdue").checked) query.set("overdue", "true");
      tasks.push(
        this.call("GET", `/api/cases?${query}`).then((body) => {
          queued = body.cases;
        }),
      );
    }
    if (this.inbox) {
      tasks.push(
        this.call("GET", "/api/cases?limit=100").then((body) => {
          mine = body.cases.filter((c) => this.isMine(c));
        }),
      );
    }
    try {
      await Promise.all(tasks);
    } catch (e) {
      if (generation === this.loads) toast(this.errorText(e), "error");
      return;
    }
    if (generation !== this.loads) return; // an older answer arriving late
    for (const c of [...queued, ...mine]) {
      if (this.open.has(c.case_id)) await this.loadSessions(c);
    }
    if (generation !== this.loads) return;
    this.queued = queued;
    this.mine = mine;
    this.render();
  }

  /** A case for this mediator's inbox: theirs, or waiting in their organisation. */
  isMine(c) {
    if (c.mediator_id) return c.mediator_id === this.account.id;
    return c.state === "dispatched" && c.holder_organisation_id === this.account.organisation_id;
  }

  async loadSessions(c) {
    try {
      const sessions = await this.call("GET", `/api/cases/${encodeURIComponent(c.case_id)}/sessions`);
      const outbox = await this.call("GET", `/api/cases/${encodeURIComponent(c.case_id)}/outbox`);
      const sent = await this.call("GET", `/api/notifications?case_id=${encodeURIComponent(c.case_id)}`);
      this.sessions.set(c.case_id, {
        sessions: sessions.sessions,
        messages: outbox.messages,
        notifications: sent.notifications,
      });
    } catch (e) {
      toast(this.errorText(e), "error");
    }
  }

  render() {
    if (this.queue) {
      $("cases-count").textContent = String(this.queued.length);
      $("cases-empty").hidden = this.queued.length > 0;
      $("case-list").replaceChildren(...this.queued.map((c) => this.card(c)));
    }
    if (this.inbox) {
      $("inbox-count").textContent = String(this.mine.length);
      $("inbox-empty").hidden = this.mine.length > 0;
      $("inbox-list").replaceChildren(...this.mine.map((c) => this.card(c)));
    }
  }

  // -- a case ----------------------------------------------------------------------------
  card(c) {
    const region = c.region?.length ? c.region[c.region.length - 1].name : "";
    const facts = [this.typeName(c.dispute_type), region, t("staff.case.created", { time: when(c.created_at) })];
    const parties = c.parties.map((p) => `${t(`case.party.${p.role}`)} ${p.name}`).join("　");
    const holder = [
      c.holder_organisation_name ? t("staff.case.holder", { name: c.holder_organisation_name }) : "",
      c.mediator_name ? t("staff.case.mediator", { name: c.mediator_name }) : "",
      c.deadline_at ? t("staff.case.deadline", { time: when(c.deadline_at, false) }) : "",
    ].filter(Boolean);
    const card = h(
      "article.card.case-card",
      { dataset: { caseId: c.case_id, state: c.state, overdue: String(c.overdue) } },
      h(
        "div.case-card-head",
        {},
        h("h3.case-card-number", { text: c.case_number }),
        h(`span.badge.case-state.case-state-${c.state}`, { text: t(`case.state.${c.state}`) }),
        c.overdue ? h("span.badge.overdue", { text: t("staff.case.overdue") }) : null,
        c.follow_up_overdue ? h("span.badge.overdue", { text: t("staff.case.follow_up.overdue") }) : null,
      ),
      h("p.case-card-meta.hint", { text: facts.filter(Boolean).join(" · ") }),
      h("p.case-card-parties", { text: parties }),
      holder.length ? h("p.case-card-meta.hint", { text: holder.join(" · ") }) : null,
    );
    const actions = new Set(c.actions || []);
    const row = h("div.case-card-actions");
    if (actions.has("accept")) row.append(this.button(c, "accept", t("staff.case.accept"), true));
    if (actions.has("take")) row.append(this.button(c, "take", t("staff.case.take"), true));
    if (row.childElementCount) card.append(row);
    if (actions.has("dispatch")) card.append(this.dispatchForm(c));
    if (actions.has("close") && c.state === "mediating") card.append(this.closeForm(c));
    if (c.state === "mediating" && (this.roles.has("admin") || c.mediator_id === this.account.id)) {
      card.append(this.sessionsPanel(c));
    }
    if (actions.has("return")) card.append(this.returnForm(c));
    if (AFTER_STATES.has(c.state)) card.append(this.aftercarePanel(c));
    return card;
  }

  // -- after mediation: follow-ups (回访) and the court (司法确认) -------------------------
  aftercarePanel(c) {
    const known = this.aftercare.get(c.case_id);
    const details = h(
      "details.case-aftercare",
      { open: Boolean(known), dataset: { loaded: String(Boolean(known)) } },
      h("summary", { text: t("staff.case.aftercare") }),
    );
    details.addEventListener("toggle", async () => {
      if (!details.open) {
        this.aftercare.delete(c.case_id);
        return;
      }
      if (!this.aftercare.has(c.case_id)) {
        await this.loadAftercare(c);
        this.render();
      }
    });
    if (!known) return details;
    const ups = known.followUps;
    details.append(h("h4", { text: t("staff.case.follow_up") }));
    if (ups.follow_up_due_at) {
      details.append(h("p.hint", { text: t("staff.case.follow_up.due", { time: when(ups.follow_up_due_at, false) }) }));
    }
    details.append(
      h(
        "ul.case-follow-ups",
        {},
        ...ups.follow_ups.map((f) =>
          h("li", { text: `${f.date} · ${f.method} · ${f.performance}${f.notes ? ` · ${f.notes}` : ""}` }),
        ),
      ),
    );
    if ((c.actions || []).includes("follow_up")) details.append(this.followUpForm(c));
    const court = known.court;
    if (court?.eligible) details.append(this.courtPart(c, court));
    return details;
  }

  async loadAftercare(c) {
    const base = `/api/cases/${encodeURIComponent(c.case_id)}`;
    try {
      const followUps = await this.call("GET", `${base}/follow-ups`);
      const court = await this.call("GET", `${base}/court`).catch(() => null);
      this.aftercare.set(c.case_id, { followUps, court });
    } catch (e) {
      toast(this.errorText(e), "error");
    }
  }

  followUpForm(c) {
    const today = new Date().toISOString().slice(0, 10);
    const date = h("input", { type: "date", name: "date", value: today, required: true });
    const method = h("select", { name: "method" }, ...METHODS.map(([m, key]) => new Option(t(`staff.case.follow_up.method.${key}`), m)));
    const performance = h("select", { name: "performance" }, ...PERFORMANCE.map(([p, key]) => new Option(t(`staff.case.follow_up.performance.${key}`), p)));
    const notes = h("textarea", { name: "notes", rows: 2, maxlength: 2000 });
    const error = h("p.form-error", { role: "alert", hidden: true });
    const form = h(
      "form.case-follow-up.case-action-form",
      { novalidate: true },
      h("label.field", {}, h("span.field-label", { text: t("staff.case.follow_up.date") }), date),
      h("label.field", {}, h("span.field-label", { text: t("staff.case.follow_up.method") }), method),
      h("label.field", {}, h("span.field-label", { text: t("staff.case.follow_up.performance") }), performance),
      h("label.field", {}, h("span.field-label", { text: t("staff.case.follow_up.notes") }), notes),
      error,
      h("button.btn.primary", { type: "submit", dataset: { action: "follow-up" }, text: t("staff.case.follow_up.record") }),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { date: date.value, method: method.value, performance: performance.value, notes: notes.value };
      await this.aftercareChange(c, "follow-ups", body, form, error, t("staff.case.follow_up.done"));
    });
    return form;
  }

  courtPart(c, court) {
    const part = h("div.case-court", {}, h("h4", { text: t("staff.case.court") }));
    const deadline = court.deadline_at ? when(court.deadline_at, false) : "-";
    part.append(h("p.case-court-deadline", { text: t("staff.case.court.deadline", { time: deadline, days: court.days_left ?? "-" }) }));
    if (court.deadline_passed) part.append(h("span.badge.overdue", { text: t("staff.case.court.passed") }));
    part.append(
      h(
        "ul.case-court-checklist",
        {},
        ...court.checklist.map((i) =>
          h("li", { dataset: { present: String(i.present) }, text: `${i.present ? t("staff.case.court.present") : t("staff.case.court.missing")} ${i.label}` }),
        ),
      ),
    );
    const name = h("input", { type: "text", name: "court", maxlength: 100, value: court.court || "", required: true });
    const addresses = (c.parties || []).map((p, position) => {
      const saved = (court.application.parties || []).find((x) => x.position === position) || {};
      return [position, h("input", { type: "text", maxlength: 200, value: saved.address || "", name: `address-${position}` }), p];
    });
    const error = h("p.form-error", { role: "alert", hidden: true });
    const form = h(
      "form.case-court-bundle.case-action-form",
      { novalidate: true },
      h("label.field", {}, h("span.field-label", { text: t("staff.case.court.name") }), name),
      ...addresses.map(([, input, p]) =>
        h("label.field", {}, h("span.field-label", { text: t("staff.case.court.address", { who: `${t(`case.party.${p.role}`)} ${p.name}` }) }), input),
      ),
      error,
      h("button.btn.primary", { type: "submit", dataset: { action: "court-bundle" }, text: t("staff.case.court.bundle") }),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!name.value.trim()) {
        error.textContent = t("staff.case.court.name_empty");
        error.hidden = false;
        return;
      }
      const saved = court.application.parties || [];
      const parties = addresses.map(([position, input]) => ({
        ...(saved.find((x) => x.position === position) || {}),
        position,
        address: input.value.trim(),
      }));
      await this.bundle(c, { court: name.value.trim(), parties }, form, error);
    });
    part.append(form);
    if (court.answers.length) {
      part.append(
        h(
          "ul.case-court-answers",
          {},
          ...court.answers.map((a) => h("li", { text: `${a.date} · ${a.label} · ${a.document_number}` })),
        ),
      );
    }
    part.append(this.answerForm(c));
    return part;
  }

  answerForm(c) {
    const status = h("select", { name: "status" }, ...ANSWERS.map((a) => new Option(t(`staff.case.court.answer.${a}`), a)));
    const number = h("input", { type: "text", name: "document_number", maxlength: 64, required: true });
    const date = h("input", { type: "date", name: "date", value: new Date().toISOString().slice(0, 10), required: true });
    const error = h("p.form-error", { role: "alert", hidden: true });
    const form = h(
      "form.case-court-answer.case-action-form",
      { novalidate: true },
      h("label.field", {}, h("span.field-label", { text: t("staff.case.court.answer") }), status),
      h("label.field", {}, h("span.field-label", { text: t("staff.case.court.document_number") }), number),
      h("label.field", {}, h("span.field-label", { text: t("staff.case.court.date") }), date),
      error,
      h("button.btn", { type: "submit", dataset: { action: "court-answer" }, text: t("staff.case.court.answer.record") }),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { status: status.value, document_number: number.value.trim(), date: date.value };
      if (!body.document_number) {
        error.textContent = t("staff.case.court.document_number_empty");
        error.hidden = false;
        return;
      }
      await this.aftercareChange(c, "court-answer", body, form, error, t("staff.case.court.answer.done"));
    });
    return form;
  }

  async aftercareChange(c, what, body, form, error, done) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.hidden = true;
    try {
      await this.call("POST", `/api/cases/${encodeURIComponent(c.case_id)}/${what}`, body);
      await this.loadAftercare(c);
      await this.load();
      toast(done);
    } catch (err) {
      error.textContent = this.errorText(err);
      error.hidden = false;
      button.disabled = false;
    }
  }

  async bundle(c, body, form, error) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.hidden = true;
    try {
      const response = await this.fetchRaw("POST", `/api/cases/${encodeURIComponent(c.case_id)}/court-bundle`, body);
      const url = URL.createObjectURL(await response.blob());
      const link = h("a", { href: url, download: `司法确认-${c.case_number}.zip` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      await this.loadAftercare(c);
      this.render();
      toast(t("staff.case.court.bundle.done"));
    } catch (err) {
      error.textContent = this.errorText(err);
      error.hidden = false;
    }
    button.disabled = false;
  }

  button(c, action, text, primary = false) {
    return h(`button.btn${primary ? ".primary" : ""}`, {
      type: "button",
      dataset: { action },
      text,
      on: { click: (e) => this.move(c, { action }, e.currentTarget) },
    });
  }

  dispatchForm(c) {
    const select = h("select", { name: "target", "aria-label": t("staff.case.dispatch.to") });
    const organisations = h("optgroup", { label: t("staff.case.dispatch.organisations") });
    for (const o of this.directory.organisations) organisations.append(new Option(o.name, `org:${o.id}`));
    const mediators = h("optgroup", { label: t("staff.case.dispatch.mediators") });
    const orgName = new Map(this.directory.organisations.map((o) => [o.id, o.name]));
    for (const m of this.directory.mediators) {
      const where = orgName.get(m.organisation_id);
      mediators.append(new Option(where ? `${m.name}（${where}）` : m.name, `mediator:${m.id}`));
    }
    select.append(new Option(t("staff.case.choose"), ""), organisations, mediators);
    const error = h("p.field-error", { role: "alert", hidden: true });
    const form = h(
      "form.case-dispatch.case-action-form",
      { novalidate: true },
      h("label.field", {}, h("span.field-label", { text: t("staff.case.dispatch.to") }), select),
      error,
      h("button.btn.primary", { type: "submit", dataset: { action: "dispatch" }, text: t("staff.case.dispatch") }),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const [kind, id] = select.value.split(":");
      if (!id) {
        error.textContent = t("staff.case.dispatch.empty");
        error.hidden = false;
        return;
      }
      const body = { action: "dispatch", [kind === "org" ? "organisation_id" : "mediator_id"]: id };
      this.move(c, body, form.querySelector("button"), error);
    });
    return form;
  }

  returnForm(c) {
    const reason = h("textarea", { name: "reason", rows: 2, maxlength: 500, "aria-label": t("staff.case.return.reason") });
    const error = h("p.field-error", { role: "alert", hidden: true });
    const button = h("button.btn.danger-outline", { type: "button", dataset: { action: "return" }, text: t("staff.case.return.confirm") });
    button.addEventListener("click", () => {
      const text = reason.value.trim();
      if (!text) {
        error.textContent = t("staff.case.return.empty");
        error.hidden = false;
        reason.focus();
        return;
      }
      this.move(c, { action: "return", reason: text }, button, error);
    });
    return h(
      "details.case-return",
      {},
      h("summary", { text: t("staff.case.return") }),
      h("label.field", {}, h("span.field-label", { text: t("staff.case.return.reason") }), reason),
      error,
      button,
    );
  }

  closeForm(c) {
    const outcome = h(
      "select",
      { name: "outcome", "aria-label": t("staff.case.close.outcome") },
      new Option(t("case.state.succeeded"), "success"),
      new Option(t("case.state.failed"), "failure"),
    );
    const form = h(
      "form.case-close.case-action-form",
      { novalidate: true },
      h("label.field", {}, h("span.field-label", { text: t("staff.case.close.outcome") }), outcome),
      h("button.btn", { type: "submit", dataset: { action: "close" }, text: t("staff.case.close") }),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.move(c, { action: "close", outcome: outcome.value }, form.querySelector("button"));
    });
    return form;
  }

  // -- sessions --------------------------------------------------------------------------
  sessionsPanel(c) {
    const known = this.sessions.get(c.case_id);
    const details = h(
      "details.case-sessions",
      { open: this.open.has(c.case_id), dataset: { loaded: String(Boolean(known)) } },
      h("summary", { text: t("staff.case.sessions") }),
    );
    details.addEventListener("toggle", async () => {
      if (!details.open) {
        this.open.delete(c.case_id);
        return;
      }
      this.open.add(c.case_id);
      if (!this.sessions.has(c.case_id)) {
        await this.loadSessions(c);
        this.render();
      }
    });
    if (known) {
      if (known.sessions.length) {
        details.append(h("ul.case-session-list", {}, ...known.sessions.map((s) => this.sessionItem(s))));
      }
      if (known.messages.length) {
        details.append(
          h("h4", { text: t("staff.case.outbox") }),
          h("p.hint", { text: t("staff.case.outbox.hint") }),
          h("ul.case-outbox", {}, ...known.messages.map((m) => this.message(m))),
        );
      }
      if (known.notifications?.length) {
        details.append(
          h("h4", { text: t("staff.case.notifications") }),
          h("ul.case-notifications", {}, ...known.notifications.map((n) => this.notification(n))),
        );
      }
    }
    if (!this.forms.has(c.case_id)) this.forms.set(c.case_id, this.scheduleForm(c));
    details.append(this.forms.get(c.case_id));
    return details;
  }

  sessionItem(s) {
    const state = s.ended_at ? "ended" : s.held_at ? "held" : "scheduled";
    const item = h(
      "li.case-session",
      { dataset: { sessionId: s.session_id, roomId: s.room_id, state } },
      h("span.case-session-when", { text: when(s.scheduled_at) }),
      h("span.badge", { text: t(`staff.case.session.${state}`) }),
      h("span.hint", { text: s.invites.map((i) => i.name).join("、") }),
    );
    if (!s.ended_at) {
      item.append(
        h("button.btn.primary", {
          type: "button",
          dataset: { action: "enter" },
          text: t("staff.room.enter"),
          on: { click: (e) => this.enter(s, e.currentTarget) },
        }),
      );
    }
    return item;
  }

  /** One message of the notification outbox: what, to whom (address masked), its state. */
  notification(n) {
    const to = n.recipient;
    const who = to.side ? t(`case.party.${to.side}`) : t(`notification.to.${to.role}`);
    const state = [t(`staff.case.notifications.${n.status}`)];
    if (n.attempts) state.push(t("staff.case.notifications.attempts", { n: n.attempts }));
    if (n.status === "queued") state.push(t("staff.case.notifications.next", { time: when(n.not_before) }));
    return h(
      "li.notification",
      { dataset: { kind: n.kind, status: n.status } },
      h("span", { text: t(`notification.kind.${n.kind}`) }),
      h("span.hint", { text: ` · ${who}${to.address ? ` ${to.address}` : ""} · ` }),
      h(`span.badge.notification-${n.status}`, { text: state.join(" · ") }),
      n.last_error ? h("span.hint.notification-error", { text: ` ${n.last_error}` }) : null,
    );
  }

  message(m) {
    const to = m.to;
    const who = to.role === "expert" ? t("role.expert") : t(`case.party.${to.side}`);
    const url = h("input.invite-url", {
      type: "text",
      readonly: true,
      value: m.links.join || "",
      "aria-label": t("invite.url"),
      on: { focus: (e) => e.currentTarget.select() },
    });
    url.value = m.links.join || "";
    const copy = h("button.btn", {
      type: "button",
      dataset: { action: "copy" },
      text: t("staff.case.outbox.copy"),
      on: {
        click: async () => {
          const done = await copyText(m.text, url);
          toast(t(done ? "invite.copied" : "invite.copy_failed"), done ? "info" : "error");
        },
      },
    });
    return h(
      "li.outbox-message",
      { dataset: { role: to.role, side: to.side || "", sessionId: m.session_id || "" } },
      h(
        "p.outbox-to",
        {},
        h("strong", { text: to.name }),
        ` ${who}`,
        to.phone ? h("span.hint", { text: ` · ${to.phone}` }) : null,
        h("span.badge", { text: t(`staff.case.outbox.${m.status}`) }),
      ),
      m.links.join ? h("div.copy-row", {}, url, copy) : null,
      h("pre.outbox-text", { text: m.text }),
    );
  }

  scheduleForm(c) {
    const at = h("input", {
      type: "datetime-local",
      name: "scheduled_at",
      required: true,
      value: localInput(24),
      "aria-label": t("staff.case.schedule.when"),
    });
    at.value = localInput(24);
    const experts = h("fieldset.expert-checks", {}, h("legend.field-label", { text: t("staff.case.schedule.experts") }));
    if (!this.experts.length) experts.append(h("p.hint", { text: t("staff.case.schedule.no_experts") }));
    for (const expert of this.experts) {
      const tags = expert.specialties.join("、");
      experts.append(
        h(
          "label.check-row.expert-check",
          {},
          h("input", { type: "checkbox", name: "expert", value: expert.expert_id }),
          h("span", { text: tags ? `${expert.name}（${tags}）` : expert.name }),
        ),
      );
    }
    const error = h("p.field-error", { role: "alert", hidden: true });
    const form = h(
      "form.case-schedule.staff-form",
      { novalidate: true },
      h("h4", { text: t("staff.case.schedule") }),
      h("label.field", {}, h("span.field-label", { text: t("staff.case.schedule.when") }), at),
      experts,
      error,
      h("button.btn.primary", { type: "submit", dataset: { action: "schedule" }, text: t("staff.case.schedule.create") }),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const time = new Date(at.value).getTime();
      if (!at.value || Number.isNaN(time)) {
        error.textContent = t("staff.case.schedule.empty");
        error.hidden = false;
        return;
      }
      const body = {
        scheduled_at: Math.round(time / 1000),
        expert_ids: [...form.querySelectorAll('input[name="expert"]:checked')].map((x) => x.value),
      };
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      error.hidden = true;
      try {
        await this.call("POST", `/api/cases/${encodeURIComponent(c.case_id)}/sessions`, body);
        toast(t("staff.case.schedule.done", { time: when(body.scheduled_at) }));
        this.open.add(c.case_id);
        this.sessions.delete(c.case_id);
        this.forms.delete(c.case_id);
        await this.load();
      } catch (err) {
        error.textContent = this.errorText(err);
        error.hidden = false;
        button.disabled = false;
      }
    });
    return form;
  }

  async enter(session, button) {
    button.disabled = true;
    try {
      const entry = await this.call("POST", `/api/rooms/${encodeURIComponent(session.room_id)}/enter`);
      location.assign(entry.url);
    } catch (e) {
      toast(this.errorText(e), "error");
      button.disabled = false;
    }
  }

  // -- changes ---------------------------------------------------------------------------
  async move(c, body, button, error) {
    button.disabled = true;
    if (error) error.hidden = true;
    try {
      const moved = await this.call("POST", `/api/cases/${encodeURIComponent(c.case_id)}/transitions`, body);
      toast(t("staff.case.moved", { number: moved.case_number, state: t(`case.state.${moved.state}`) }));
      await this.load();
    } catch (e) {
      if (error) {
        error.textContent = this.errorText(e);
        error.hidden = false;
      } else {
        toast(this.errorText(e), "error");
      }
      button.disabled = false;
    }
  }

  async register() {
    const value = (id) => $(id).value.trim();
    const error = $("case-error");
    const missing = [
      ["case-type", "staff.case.type.empty"],
      ["case-region", "staff.case.region.empty"],
      ["case-description", "staff.case.description.empty"],
      ["case-applicant-name", "staff.case.applicant.empty"],
    ].find(([id]) => !value(id));
    if (missing) {
      error.textContent = t(missing[1]);
      error.hidden = false;
      $(missing[0]).focus();
      return;
    }
    const party = (role, prefix) => {
      const p = { role, name: value(`${prefix}-name`) };
      const phone = value(`${prefix}-phone`).replace(/[\s-]/g, "");
      if (phone) p.phone = phone;
      return p;
    };
    const parties = [party("applicant", "case-applicant")];
    if (value("case-respondent-name")) parties.push(party("respondent", "case-respondent"));
    const body = {
      source: $("case-source").value,
      dispute_type: value("case-type"),
      region: value("case-region"),
      description: value("case-description"),
      parties,
    };
    error.hidden = true;
    $("case-create").disabled = true;
    try {
      const made = await this.call("POST", "/api/cases", body);
      toast(t("staff.case.registered", { number: made.case_number }));
      $("case-form").reset();
      $("case-new").open = false;
      await this.load();
    } catch (e) {
      error.textContent = this.errorText(e);
      error.hidden = false;
    } finally {
      $("case-create").disabled = false;
    }
  }
}
