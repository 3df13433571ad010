/**
 * Caucuses (背靠背调解) on the room page (docs/PROTOCOL.md: `caucus_*`): for everyone, a
 * banner while you are in a caucus and the names of who is "in private consultation";
 * for parties, a button to ask for a private talk with the mediator or, when experts are
 * in the room, with one of them (`caucus_request` `with`); for mediators, a panel to
 * open a caucus with chosen members, join one, close one, return everyone, and answer
 * the parties' requests, time a caucus (`minutes`, `caucus_timer`) and send a notice to
 * everyone (`caucus_broadcast`). Everyone sees the mediator's notices (`mediator_notice`)
 * in a banner; a caucus's members and the mediators see its countdown and the server's
 * warning and end (`caucus_time`; the end forces nothing). The SFU decides who receives
 * whom; this only shows it. A caucus is recorded only while every member consents: the
 * mediator asks (`caucus_record`), each member answers in a banner
 * (`caucus_recording_consent`), and the caucus's state says who has not answered.
 *
 * @module caucus-panel
 */
import { getLang, onLangChange, t } from "./i18n.js";
import { chime } from "./chime.js";
import { h, replaceItems, toast } from "./ui.js";

/** "m:ss" of a number of seconds. */
function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

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
    /** @type {{id: string, title: string, members: string[], opened_at: number,
     *   ends_at: number|null, remaining_s?: number, minutes?: number, timer_state?: string}[]} */
    this.caucuses = [];
    /** @type {Map<string, number>} a timed caucus's end by this page's clock (ms) */
    this.deadlines = new Map();
    this.ticker = 0;
    /** @type {{caucus_id: string, state: string, ends_at: number}|null} the alert shown */
    this.timeAlert = null;
    /** @type {Map<string, any>} open requests by participant id (mediators) */
    this.asking = new Map();
    this.el = {
      banner: $("caucus-banner"),
      bannerText: $("caucus-banner-text"),
      away: $("caucus-away"),
      ask: $("caucus-ask"),
      askWith: /** @type {HTMLSelectElement} */ ($("caucus-ask-with")),
      panel: $("caucus-panel"),
      members: $("caucus-members"),
      title: $("caucus-title"),
      open: $("caucus-open"),
      list: $("caucus-list"),
      returnAll: $("caucus-return-all"),
      requestList: $("caucus-requests"),
      minutes: /** @type {HTMLInputElement} */ ($("caucus-minutes")),
      countdown: $("caucus-countdown"),
      timeAlert: $("caucus-time-alert"),
      timeAlertText: $("caucus-time-alert-text"),
      recorded: $("caucus-recorded"),
      recordingAsk: $("caucus-recording-ask"),
      notice: $("notice-banner"),
      noticeText: $("notice-text"),
      noticeInput: /** @type {HTMLInputElement} */ ($("notice-input")),
      noticeSend: $("notice-send"),
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
    signalling.on("caucus_time", (p) => this.onTime(p));
    signalling.on("mediator_notice", (p) => this.showNotice(p));
    $("notice-dismiss").addEventListener("click", () => (this.el.notice.hidden = true));
    $("caucus-time-alert-dismiss").addEventListener("click", () => {
      this.el.timeAlert.hidden = true;
    });
    this.el.noticeSend.addEventListener("click", () => this.sendNotice());
    $("caucus-recording-accept").addEventListener("click", () => this.answerRecording(true));
    $("caucus-recording-refuse").addEventListener("click", () => this.answerRecording(false));
    this.el.noticeInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") this.sendNotice();
    });    this.el.ask.addEventListener("click", () => this.ask());
    this.el.open.addEventListener("click", () => this.open());
    this.el.returnAll.addEventListener("click", () =>
      this.requests.send("caucus-all", "caucus_close_all", {}),
    );
    room.watch(["self", "participants", "recording"], () => this.render());
    onLangChange(() => this.render());
  }

  update(caucuses) {
    this.caucuses = caucuses;
    const at = Date.now();
    this.deadlines = new Map(
      caucuses
        .filter((c) => c.ends_at != null)
        .map((c) => [c.id, at + (c.remaining_s || 0) * 1000]),
    );
    // an alert of a caucus that closed, or whose timer was changed or cleared, is over
    const alert = this.timeAlert;
    if (alert) {
      const c = caucuses.find((x) => x.id === alert.caucus_id);
      if (!c || c.ends_at !== alert.ends_at) this.hideTimeAlert();
    }
    clearInterval(this.ticker);
    this.ticker = this.deadlines.size ? window.setInterval(() => this.tick(), 1000) : 0;
    this.render();
  }

  /** Seconds left of caucus `c`'s timer, by this page's clock. */
  left(c) {
    const end = this.deadlines.get(c.id);
    return end === undefined ? null : Math.max(0, (end - Date.now()) / 1000);
  }

  /** The countdown of a timed caucus, as text ("剩余 4:59" / "时间已到"). */
  countdown(c) {
    const left = this.left(c);
    if (left === null) return "";
    return left <= 0 || c.timer_state === "ended"
      ? t("caucus.time_up_short")
      : t("caucus.remaining", { time: clock(left) });
  }

  /** Refresh the countdowns (the banner and the mediator's list) once a second. */
  tick() {
    const self = this.room.self;
    if (!self) return;
    const mine = this.placeOf(self.id);
    this.el.countdown.hidden = !mine || mine.ends_at == null;
    if (mine && mine.ends_at != null) this.el.countdown.textContent = this.countdown(mine);
    for (const c of this.caucuses) {
      const el = this.el.list.querySelector(`li[data-caucus-id="${CSS.escape(c.id)}"] .caucus-countdown`);
      if (el) el.textContent = this.countdown(c);
    }
  }

  /** The server says a caucus timer warned or ended (members and mediators only). */
  onTime(p) {
    const c = this.caucuses.find((x) => x.id === p.caucus_id);
    if (c) {
      Object.assign(c, { timer_state: p.state, ends_at: p.ends_at, remaining_s: p.remaining_s });
      this.deadlines.set(c.id, Date.now() + (p.remaining_s || 0) * 1000);
    }
    this.timeAlert = { caucus_id: p.caucus_id, state: p.state, ends_at: p.ends_at };
    this.el.timeAlert.dataset.state = p.state;
    const vars = {
      title: p.title || t("caucus.untitled"),
      n: Math.max(1, Math.ceil((p.remaining_s || 0) / 60)),
    };
    const mediator = this.room.isMediator;
    const key =
      p.state === "warning"
        ? "caucus.time_warning"
        : mediator
          ? "caucus.time_up_mediator"
          : "caucus.time_up";
    this.el.timeAlertText.textContent = t(key, vars);
    this.el.timeAlert.hidden = false;
    chime();
    this.tick();
  }

  hideTimeAlert() {
    this.timeAlert = null;
    this.el.timeAlert.hidden = true;
  }

  showNotice(p) {
    this.el.noticeText.textContent = p.text;
    this.el.notice.hidden = false;
    this.el.notice.dataset.noticeId = p.id;
    chime();
  }

  async sendNotice() {
    const text = this.el.noticeInput.value.trim();
    if (!text) return;
    const ack = await this.requests.send("caucus-broadcast", "caucus_broadcast", { text });
    if (ack?.ok) {
      this.el.noticeInput.value = "";
      toast(t("notice.sent"));
    }
  }

  /** This member's answer to recording their caucus. */
  async answerRecording(accepted) {
    const mine = this.room.self && this.placeOf(this.room.self.id);
    if (!mine) return;
    const ack = await this.requests.send("caucus-recording-consent", "caucus_recording_consent", {
      caucus_id: mine.id,
      accepted,
    });
    if (ack?.ok) {
      this.el.recordingAsk.hidden = true;
      toast(t(accepted ? "caucus.recording.accepted" : "caucus.recording.refused"));
    }
  }

  /** The mediator asks to record caucus `id` (or stops: `record` false). */
  record(id, record) {
    return this.requests.send(`caucus-record-${id}`, "caucus_record", { caucus_id: id, record });
  }

  /** A caucus's recording in words, for the mediator's list. */
  recordingText(c) {
    const rec = c.recording;
    if (!rec) return "";
    if (rec.state === "on") return t("caucus.recording.on");
    if (rec.state === "refused") return t("caucus.recording.refused_state");
    return t("caucus.recording.waiting", { names: rec.waiting.map((id) => this.name(id)).join("、") });
  }

  /** Set (`minutes`) or clear (none) caucus `id`'s timer. */
  setTimer(id, minutes) {
    const payload = minutes ? { caucus_id: id, minutes } : { caucus_id: id };
    return this.requests.send(`caucus-timer-${id}`, "caucus_timer", payload);
  }

  name(id) {
    return this.room.participants.get(id)?.name || "?";
  }

  /** The caucus `id` is in, or undefined for the main room. */
  placeOf(id) {
    return this.caucuses.find((c) => c.members.includes(id));
  }

  async ask() {
    const expert = this.el.askWith.hidden ? "" : this.el.askWith.value;
    const ack = await this.requests.send("caucus-ask", "caucus_request", {
      with: expert || "mediator",
    });
    if (ack?.ok) toast(expert ? t("caucus.asked_expert", { name: this.name(expert) }) : t("caucus.asked"));
  }

  /** A party's choice of whom to ask: the mediator, or an expert in the room. */
  drawAskWith(asking) {
    const self = this.room.self;
    const experts = [...this.room.participants.values()].filter(
      (p) => p.role === "expert" && p.id !== self?.id && p.status !== "lobby",
    );
    const select = this.el.askWith;
    select.hidden = !asking || experts.length === 0;
    const key = `${getLang()}|${experts.map((p) => `${p.id}:${p.name}`).join(",")}`;
    if (select.hidden || select.dataset.key === key) return; // an open list stays open
    select.dataset.key = key;
    const chosen = select.value;
    replaceItems(select, [
      h("option", { value: "", text: t("caucus.with_mediator") }),
      ...experts.map((p) => h("option", { value: p.id, text: p.name })),
    ]);
    select.value = experts.some((p) => p.id === chosen) ? chosen : "";
  }

  async open(members) {
    const chosen =
      members ||
      [...this.el.members.querySelectorAll("input:checked")].map((input) => input.value);
    if (!chosen.length) return;
    const title = this.el.title.value.trim();
    const minutes = members ? 0 : Number(this.el.minutes.value);
    /** @type {{members: string[], title?: string, minutes?: number}} */
    const payload = { members: chosen };
    if (title) payload.title = title;
    if (Number.isInteger(minutes) && minutes > 0) payload.minutes = minutes;
    const ack = await this.requests.send("caucus-open", "caucus_open", payload);
    if (ack?.ok) {
      this.el.title.value = "";
      this.el.minutes.value = "";
    }
  }

  render() {
    this.draw();
    this.tick();
  }

  draw() {
    const self = this.room.self;
    if (!self) return;
    const mine = this.placeOf(self.id);
    const away = this.caucuses.flatMap((c) => c.members).filter((id) => id !== self.id);
    this.el.banner.hidden = !mine;
    if (!mine && this.timeAlert && !this.room.isMediator) this.hideTimeAlert();
    if (mine) {
      const others = mine.members.filter((id) => id !== self.id).map((id) => this.name(id));
      this.el.bannerText.textContent = t("caucus.banner", {
        title: mine.title || t("caucus.untitled"),
        names: others.join("、") || "—",
      });
    }
    const rec = mine?.recording;
    this.el.recorded.hidden = rec?.state !== "on";
    this.el.recordingAsk.hidden = !rec || !rec.waiting.includes(self.id);
    this.el.away.hidden = !!mine || away.length === 0;
    this.el.away.textContent = t("caucus.away", { names: away.map((id) => this.name(id)).join("、") });
    const asking = self.role === "party" && !mine;
    this.el.ask.hidden = !asking;
    this.drawAskWith(asking);
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
          { "data-caucus-id": c.id },
          h("strong", { text: c.title || t("caucus.untitled") }),
          h("span", { text: " " + c.members.map((id) => this.name(id)).join("、") }),
          c.ends_at != null ? h("strong.caucus-countdown", { text: this.countdown(c) }) : null,
          c.recording ? h("span.caucus-recording", { text: this.recordingText(c) }) : null,
          this.timerControls(c),
          c.recording
            ? h("button.btn.small", {
                type: "button",
                "data-action": "caucus-record-stop",
                text: t("caucus.recording.stop"),
                on: { click: () => this.record(c.id, false) },
              })
            : this.room.recording
              ? h("button.btn.small", {
                  type: "button",
                  "data-action": "caucus-record",
                  text: t("caucus.recording.start"),
                  on: { click: () => this.record(c.id, true) },
                })
              : null,
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

  /** A mediator's timer controls for caucus `c`: minutes and 设置计时, or 取消计时. */
  timerControls(c) {
    const input = h("input.caucus-timer-minutes", {
      type: "number",
      min: "1",
      max: "240",
      step: "1",
      inputmode: "numeric",
      "aria-label": t("caucus.timer.minutes"),
      placeholder: t("caucus.timer.placeholder"),
    });
    return h(
      "span.caucus-timer",
      {},
      input,
      h("button.btn.small", {
        type: "button",
        text: t("caucus.timer.set"),
        on: {
          click: () => {
            const minutes = Number(/** @type {HTMLInputElement} */ (input).value);
            if (Number.isInteger(minutes) && minutes > 0) this.setTimer(c.id, minutes);
          },
        },
      }),
      c.ends_at != null
        ? h("button.btn.small", {
            type: "button",
            text: t("caucus.timer.clear"),
            on: { click: () => this.setTimer(c.id, 0) },
          })
        : null,
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
