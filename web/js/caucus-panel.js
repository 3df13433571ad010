/**
 * Caucuses (背靠背调解) on the room page (docs/PROTOCOL.md: `caucus_*`): for everyone, a
 * banner while you are in a caucus and the names of who is "in private consultation";
 * for parties, a button to ask the mediator for a private talk; for mediators, a panel to
 * open a caucus with chosen members, join one, close one, return everyone, and answer
 * the parties' requests. The SFU decides who receives whom; this only shows it.
 *
 * @module caucus-panel
 */
import { onLangChange, t } from "./i18n.js";
import { h, replaceItems, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);

export class CaucusPanel {
  /**
   * @param {object} opts
   * @param {import("./signalling.js").Signalling} opts.signalling
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./requests.js").Requests} opts.requests
   */
  constructor({ signalling, room, requests }) {
    this.room = room;
    this.requests = requests;
    /** @type {{id: string, title: string, members: string[], opened_at: number}[]} */
    this.caucuses = [];
    /** @type {Map<string, any>} open requests by participant id (mediators) */
    this.asking = new Map();
    this.el = {
      banner: $("caucus-banner"),
      bannerText: $("caucus-banner-text"),
      away: $("caucus-away"),
      ask: $("caucus-ask"),
      panel: $("caucus-panel"),
      members: $("caucus-members"),
      title: $("caucus-title"),
      open: $("caucus-open"),
      list: $("caucus-list"),
      returnAll: $("caucus-return-all"),
      requestList: $("caucus-requests"),
    };
    signalling.on("room_state", (p) => this.update(p.caucuses || []));
    signalling.on("caucus_updated", (p) => this.update(p.caucuses));
    signalling.on("caucus_requested", (p) => {
      this.asking.set(p.participant_id, p);
      toast(t("caucus.requested", { name: p.name }));
      this.render();
    });
    signalling.on("caucus_request_answered", (p) => {
      this.asking.delete(p.participant_id);
      this.render();
    });
    signalling.on("caucus_request_declined", () => toast(t("caucus.declined")));
    this.el.ask.addEventListener("click", () => this.ask());
    this.el.open.addEventListener("click", () => this.open());
    this.el.returnAll.addEventListener("click", () =>
      this.requests.send("caucus-all", "caucus_close_all", {}),
    );
    room.watch(["self", "participants"], () => this.render());
    onLangChange(() => this.render());
  }

  update(caucuses) {
    this.caucuses = caucuses;
    this.render();
  }

  name(id) {
    return this.room.participants.get(id)?.name || "?";
  }

  /** The caucus `id` is in, or undefined for the main room. */
  placeOf(id) {
    return this.caucuses.find((c) => c.members.includes(id));
  }

  async ask() {
    const ack = await this.requests.send("caucus-ask", "caucus_request", { with: "mediator" });
    if (ack?.ok) toast(t("caucus.asked"));
  }

  async open(members) {
    const chosen =
      members ||
      [...this.el.members.querySelectorAll("input:checked")].map((input) => input.value);
    if (!chosen.length) return;
    const title = this.el.title.value.trim();
    const payload = title ? { members: chosen, title } : { members: chosen };
    const ack = await this.requests.send("caucus-open", "caucus_open", payload);
    if (ack?.ok) this.el.title.value = "";
  }

  render() {
    const self = this.room.self;
    if (!self) return;
    const mine = this.placeOf(self.id);
    const away = this.caucuses.flatMap((c) => c.members).filter((id) => id !== self.id);
    this.el.banner.hidden = !mine;
    if (mine) {
      const others = mine.members.filter((id) => id !== self.id).map((id) => this.name(id));
      this.el.bannerText.textContent = t("caucus.banner", {
        title: mine.title || t("caucus.untitled"),
        names: others.join("、") || "—",
      });
    }
    this.el.away.hidden = !!mine || away.length === 0;
    this.el.away.textContent = t("caucus.away", { names: away.map((id) => this.name(id)).join("、") });
    this.el.ask.hidden = self.role !== "party" || !!mine;
    const mediator = this.room.isMediator;
    this.el.panel.hidden = !mediator;
    if (!mediator) return;
    const people = [...this.room.participants.values()].filter((p) => p.role !== "recorder");
    replaceItems(
      this.el.members,
      people.map((p) =>
        h(
          "label.check",
          {},
          h("input", { type: "checkbox", value: p.id }),
          ` ${p.name}${p.id === self.id ? t("caucus.me") : ""}`,
        ),
      ),
    );
    replaceItems(
      this.el.list,
      this.caucuses.map((c) =>
        h(
          "li.caucus",
          {},
          h("strong", { text: c.title || t("caucus.untitled") }),
          h("span", { text: " " + c.members.map((id) => this.name(id)).join("、") }),
          mine?.id === c.id
            ? h("button.btn.small", {
                type: "button",
                text: t("caucus.leave"),
                on: { click: () => this.move(self.id, null) },
              })
            : h("button.btn.small", {
                type: "button",
                text: t("caucus.join"),
                on: { click: () => this.move(self.id, c.id) },
              }),
          h("button.btn.small.danger", {
            type: "button",
            text: t("caucus.close"),
            on: { click: () => this.requests.send(`caucus-close-${c.id}`, "caucus_close", { caucus_id: c.id }) },
          }),
        ),
      ),
    );
    this.el.returnAll.hidden = this.caucuses.length === 0;
    replaceItems(
      this.el.requestList,
      [...this.asking.values()].map((r) =>
        h(
          "li",
          {},
          h("span", { text: t("caucus.request", { name: r.name, with: r.with_name || t("caucus.with_mediator") }) }),
          h("button.btn.small.primary", {
            type: "button",
            text: t("caucus.accept"),
            on: { click: () => this.accept(r) },
          }),
          h("button.btn.small", {
            type: "button",
            text: t("caucus.decline"),
            on: { click: () => this.decline(r) },
          }),
        ),
      ),
    );
  }

  move(id, caucusId) {
    const payload = caucusId ? { participant_id: id, caucus_id: caucusId } : { participant_id: id };
    return this.requests.send(`caucus-move-${id}`, "caucus_move", payload);
  }

  async accept(r) {
    const self = this.room.self;
    const members = [r.participant_id, r.with === "mediator" ? self.id : r.with];
    this.asking.delete(r.participant_id);
    await this.open(members);
    this.render();
  }

  async decline(r) {
    this.asking.delete(r.participant_id);
    await this.requests.send(`caucus-decline-${r.participant_id}`, "caucus_decline", {
      participant_id: r.participant_id,
    });
    this.render();
  }
}
