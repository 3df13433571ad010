/**
 * A mediator's calendar on the staff page: their case sessions and the bookings with them
 * or on their cases, by day or by week (`GET /api/calendar`), and their own weekly
 * availability (`GET/POST /api/availability`, `DELETE /api/availability/{id}`).
 *
 * Days are the installation's local dates as the server counts them (`from`, `to`);
 * times are shown in the browser's zone, which is the installation's for its staff.
 *
 * Stable ids: `#calendar-section`, `#calendar-days` (a `.calendar-day` per day with
 * `data-date`, each item `.calendar-item` with `data-kind` "session" or "booking" and
 * `data-id`), `#calendar-day`, `#calendar-week`, `#calendar-prev`, `#calendar-next`,
 * `#availability-list`, `#availability-form`.
 * @module staff-calendar
 */
import { getLang, onLangChange, t } from "./i18n.js";
import { h, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const DAY = 86400000;

/** @param {Date} d */
function iso(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString(getLang(), { hour: "2-digit", minute: "2-digit" });
}

export class CalendarPanel {
  /** @param {{account: any, call: Function, errorText: Function}} deps */
  constructor({ account, call, errorText }) {
    this.account = account;
    this.call = call;
    this.errorText = errorText;
    this.view = "week";
    this.anchor = new Date();
    this.data = null;
    this.rules = [];
  }

  async start() {
    $("calendar-section").hidden = false;
    $("calendar-day").addEventListener("click", () => this.show("day"));
    $("calendar-week").addEventListener("click", () => this.show("week"));
    $("calendar-prev").addEventListener("click", () => this.move(-1));
    $("calendar-next").addEventListener("click", () => this.move(1));
    $("calendar-today").addEventListener("click", () => {
      this.anchor = new Date();
      this.load();
    });
    $("availability-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.addRule();
    });
    onLangChange(() => this.render());
    await Promise.all([this.load(), this.loadRules()]);
  }

  show(view) {
    this.view = view;
    this.load();
  }

  move(step) {
    this.anchor = new Date(this.anchor.getTime() + step * (this.view === "day" ? 1 : 7) * DAY);
    this.load();
  }

  range() {
    let first = new Date(this.anchor);
    if (this.view === "week") first = new Date(first.getTime() - ((first.getDay() + 6) % 7) * DAY);
    const last = new Date(first.getTime() + (this.view === "day" ? 0 : 6) * DAY);
    return [first, last];
  }

  async load() {
    const [first, last] = this.range();
    const q = `from=${iso(first)}&to=${iso(last)}&mediator_id=${encodeURIComponent(this.account.id)}`;
    try {
      this.data = await this.call("GET", `/api/calendar?${q}`);
    } catch (e) {
      toast(this.errorText(e), "error");
      return;
    }
    this.render();
  }

  async loadRules() {
    const q = `provider_kind=mediator&provider_id=${encodeURIComponent(this.account.id)}`;
    try {
      const answer = await this.call("GET", `/api/availability?${q}`);
      this.rules = answer.rules;
    } catch {
      this.rules = [];
    }
    this.render();
  }

  render() {
    for (const b of document.querySelectorAll("#calendar-section .calendar-views .btn")) {
      b.classList.toggle("primary", b.dataset.view === this.view);
      b.setAttribute("aria-pressed", String(b.dataset.view === this.view));
    }
    const select = $("availability-weekday");
    if (select.options.length !== 7 || select.dataset.lang !== getLang()) {
      const chosen = select.value || "0";
      select.replaceChildren(
        ...[0, 1, 2, 3, 4, 5, 6].map((d) => h("option", { value: String(d), text: t(`calendar.weekday.${d}`) })),
      );
      select.value = chosen;
      select.dataset.lang = getLang();
    }
    $("availability-list").replaceChildren(
      ...this.rules.map((r) =>
        h(
          "li.availability-rule",
          { dataset: { id: r.availability_id } },
          h("span", { text: this.ruleText(r) }),
          " ",
          h("button.btn", {
            type: "button",
            text: t("calendar.remove"),
            on: { click: () => this.removeRule(r.availability_id) },
          }),
        ),
      ),
    );
    if (!this.data) return;
    $("calendar-range").textContent =
      this.data.from === this.data.to ? this.data.from : `${this.data.from} – ${this.data.to}`;
    const items = [
      ...this.data.sessions.map((s) => ({ kind: "session", id: s.session_id, at: s.starts_at, end: s.ends_at, s })),
      ...this.data.bookings.map((b) => ({ kind: "booking", id: b.booking_id, at: b.starts_at, end: b.ends_at, b })),
    ].sort((a, b) => a.at - b.at);
    const days = new Map();
    for (const item of items) {
      const key = iso(new Date(item.at * 1000));
      if (!days.has(key)) days.set(key, []);
      days.get(key).push(item);
    }
    $("calendar-empty").hidden = items.length > 0;
    $("calendar-days").replaceChildren(
      ...[...days.entries()].map(([date, list]) =>
        h(
          "section.calendar-day.card",
          { dataset: { date } },
          h("h4", { text: new Date(`${date}T00:00`).toLocaleDateString(getLang(), { weekday: "long", month: "long", day: "numeric" }) }),
          h("ul.party-list", {}, ...list.map((item) => this.itemView(item))),
        ),
      ),
    );
  }

  itemView(item) {
    const when = `${clock(item.at)}–${clock(item.end)}`;
    const label =
      item.kind === "session"
        ? t("calendar.session")
        : t("calendar.booking", { name: item.b.provider_name }) + (item.b.specialty ? `（${item.b.specialty}）` : "");
    return h(
      `li.calendar-item.calendar-${item.kind}`,
      { dataset: { kind: item.kind, id: item.id } },
      h("strong", { text: when }),
      " ",
      h("span.badge", { text: item.kind === "session" ? t("calendar.kind.session") : t("calendar.kind.booking") }),
      " ",
      h("span", { text: label }),
    );
  }

  ruleText(r) {
    const span = `${r.start}–${r.end}（${t("calendar.every", { n: r.slot_minutes })}）`;
    if (r.kind === "weekly") return `${t(`calendar.weekday.${r.weekday}`)} ${span}`;
    if (r.kind === "off") return `${r.date} ${t("calendar.off")}`;
    return `${r.date} ${span}`;
  }

  async addRule() {
    const body = {
      provider_kind: "mediator",
      kind: "weekly",
      weekday: Number($("availability-weekday").value),
      start: $("availability-start").value,
      end: $("availability-end").value,
      slot_minutes: Number($("availability-slot").value),
    };
    try {
      await this.call("POST", "/api/availability", body);
    } catch (e) {
      toast(this.errorText(e), "error");
      return;
    }
    toast(t("calendar.added"), "info");
    await this.loadRules();
  }

  async removeRule(id) {
    try {
      await this.call("DELETE", `/api/availability/${encodeURIComponent(id)}`);
    } catch (e) {
      toast(this.errorText(e), "error");
      return;
    }
    await this.loadRules();
  }
}
