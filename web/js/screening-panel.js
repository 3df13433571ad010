/**
 * Screening (特殊保护) on the mediator's console (docs/PROTOCOL.md: `screen`): pick a
 * participant, the other participant and a mode — 不可看 ("video"), 不可看也不可听
 * ("all"), 解除 ("none") — optionally both ways; see the screens in force (from
 * `room_state.screens`, `screening_updated` and each answer) and lift any of them. The
 * SFU enforces a screen by not forwarding; this only sets and shows it. Mediators only:
 * nobody else is told who is screened from whom.
 *
 * @module screening-panel
 */
import { onLangChange, t } from "./i18n.js";
import { personRole } from "./roles.js";
import { h, replaceItems, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);

/** Roles a screen may concern (the mediator and the recorder always see and hear all). */
const SCREENABLE = new Set(["party", "expert", "observer"]);

export class ScreeningPanel {
  /**
   * @param {object} opts
   * @param {import("./signalling.js").Signalling} opts.signalling
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./requests.js").Requests} opts.requests
   */
  constructor({ signalling, room, requests }) {
    this.room = room;
    this.requests = requests;
    /** @type {{participant_id: string, from: string, mode: "video"|"all"}[]} */
    this.screens = [];
    this.el = {
      panel: $("screening-panel"),
      list: $("screening-list"),
      who: /** @type {HTMLSelectElement} */ ($("screening-who")),
      from: /** @type {HTMLSelectElement} */ ($("screening-from")),
      mode: /** @type {HTMLSelectElement} */ ($("screening-mode")),
      both: /** @type {HTMLInputElement} */ ($("screening-both")),
      apply: $("screening-apply"),
    };
    signalling.on("room_state", (p) => this.update(p.screens || []));
    signalling.on("screening_updated", (p) => this.update(p.screens || []));
    this.el.apply.addEventListener("click", () => this.apply());
    this.el.who.addEventListener("change", () => this.renderFrom());
    room.watch(["self", "participants"], () => this.render());
    onLangChange(() => this.render());
  }

  update(screens) {
    this.screens = screens;
    this.render();
  }

  /** Who may be screened, or screened from, now (in the room, not a mediator). */
  people() {
    return [...this.room.participants.values()].filter((p) => SCREENABLE.has(p.role));
  }

  label(id) {
    const p = this.room.participants.get(id);
    return p ? `${p.name}（${personRole(p)}）` : t("screening.gone");
  }

  /** Fill a select with people, keeping its choice when that person is still there. */
  fill(select, people) {
    const kept = select.value;
    select.replaceChildren(
      ...people.map((p) => h("option", { value: p.id, text: this.label(p.id) })),
    );
    if (people.some((p) => p.id === kept)) select.value = kept;
  }

  renderFrom() {
    this.fill(
      this.el.from,
      this.people().filter((p) => p.id !== this.el.who.value),
    );
  }

  render() {
    const on = this.room.isMediator;
    this.el.panel.hidden = !on;
    if (!on) return;
    const people = this.people();
    this.fill(this.el.who, people);
    this.renderFrom();
    this.el.apply.disabled = people.length < 2;
    if (this.screens.length === 0) {
      this.el.list.replaceChildren(h("li.empty", { text: t("screening.empty") }));
      return;
    }
    replaceItems(
      this.el.list,
      this.screens.map((s) =>
        h(
          "li.screen-entry",
          { "data-participant-id": s.participant_id, "data-from": s.from, "data-mode": s.mode },
          h("span.screen-text", {
            text: t(`screening.entry.${s.mode}`, {
              who: this.label(s.participant_id),
              from: this.label(s.from),
            }),
          }),
          h("button.btn.small", {
            type: "button",
            "data-action": "lift",
            text: t("screening.lift"),
            on: { click: () => this.send(s.participant_id, s.from, "none") },
          }),
        ),
      ),
    );
  }

  async send(who, from, mode) {
    const ack = await this.requests.send(`screen-${who}-${from}`, "screen", {
      participant_id: who,
      from,
      mode,
    });
    if (ack?.ok) this.update(ack.screens);
    return ack;
  }

  async apply() {
    const who = this.el.who.value;
    const from = this.el.from.value;
    const mode = this.el.mode.value;
    if (!who || !from) return;
    const ack = await this.send(who, from, mode);
    if (!ack?.ok) return;
    if (this.el.both.checked) {
      const back = await this.send(from, who, mode);
      if (!back?.ok) return;
    }
    toast(t(mode === "none" ? "screening.lifted" : "screening.done"));
  }
}
