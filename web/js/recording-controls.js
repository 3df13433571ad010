/**
 * The mediator's recording controls: the start / stop button in the room's header
 * (`start_recording` / `stop_recording`), refusals shown in the 参与人 tab with the
 * consent list
 * (who agreed, who refused, who has not answered yet) from the {@link RoomState}'s
 * recording (`room_state.recording` and `recording_state`: mediators get `consents`) and
 * participants, and the link to the recordings page
 * (`/recordings#token=...` with the mediator's own token, in the fragment only).
 *
 * Starting a recording is the mediator's own consent: right after the start, this sends
 * `recording_consent {accepted: true}` for them, so the chain has it too.
 *
 * @module recording-controls
 */
import { errorText, onLangChange, t } from "./i18n.js";
import { ICONS } from "./icons.js";
import { ROLE_ORDER, personRole, roleBadge } from "./roles.js";
import { h, initial, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);

/** Order of the consent list: refusals first, then who has not answered, then agreements. */
const STATUS_ORDER = { refused: 0, pending: 1, accepted: 2 };

/** "14:05" in the page's language. */
function clock(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleTimeString(document.documentElement.lang || undefined, {
    hour: "2-digit",
    minute: "2-digit",
  });
}

export class RecordingControls {
  /**
   * @param {object} opts
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./requests.js").Requests} opts.requests
   * @param {string} opts.token the mediator's invite token (opens the recordings page)
   */
  constructor({ room, requests, token }) {
    this.room = room;
    this.requests = requests;
    this.token = token;
    this.el = {
      panel: $("recording-panel"),
      button: $("recording-button"),
      error: $("recording-error"),
      status: $("recording-status"),
      consents: $("recording-consents"),
      summary: $("recording-consent-summary"),
      link: $("recordings-link"),
    };
    this.el.button.addEventListener("click", () => this.toggle());
    if (token) this.el.link.href = `/recordings#token=${encodeURIComponent(token)}`;

    room.watch(["recording", "participants", "self"], (change) => {
      if (change.parts.has("recording")) this.noticeRefusals(change.previous.recording);
      this.render();
    });
    onLangChange(() => this.render());
  }

  /**
   * Tell the mediator at once about a new refusal (the list is further down).
   * @param {import("./room-state.js").Recording|null} before the recording as it was
   */
  noticeRefusals(before) {
    const recording = this.room.recording;
    if (recording && before && before.id === recording.id && this.room.isMediator) {
      for (const [id, c] of Object.entries(recording.consents || {})) {
        const old = before.consents?.[id];
        if (!c.accepted && (!old || old.accepted)) {
          const who = this.room.participants.get(id) || c;
          toast(t("recording.refused_toast", { name: c.name, role: personRole(who) }), "error");
        }
      }
    }
  }

  async toggle() {
    const { el, room, requests } = this;
    if (el.button.disabled) return;
    const starting = !room.recording;
    el.button.disabled = true;
    this.showError("");
    try {
      const event = starting ? "start_recording" : "stop_recording";
      const ack = await requests.send("recording", event, {});
      if (!ack) return;
      if (!ack.ok) {
        this.showError(errorText(ack.error, ack.message));
        return;
      }
      if (starting) {
        room.setRecording({ ...ack.recording, consents: ack.recording?.consents || {} });
        // starting it is the mediator's consent; the chain gets it like everyone's
        const consent = await requests.request("recording_consent", {
          recording_id: ack.recording.id,
          accepted: true,
        });
        if (!consent.ok) console.warn("own consent not recorded:", consent.error);
      } else {
        room.setRecording(null);
        toast(t("recording.stopped_toast"), "info");
      }
    } finally {
      el.button.disabled = false;
      this.render();
    }
  }

  showError(text) {
    this.el.error.hidden = !text;
    this.el.error.textContent = text;
  }

  render() {
    const { el, room } = this;
    el.panel.hidden = !room.isMediator;
    if (!room.isMediator) return;
    const rec = room.recording;
    const on = !!rec;
    el.button.innerHTML = on ? ICONS.stopRecord : ICONS.record; // constant markup
    el.button.append(h("span.label", { text: t(on ? "recording.stop" : "recording.start") }));
    el.button.classList.toggle("danger", on);
    el.button.classList.toggle("recording-start", !on);
    el.button.dataset.recording = on ? "on" : "off";
    el.link.replaceChildren(h("span", { html: ICONS.film }), h("span.label", { text: t("recording.list") }));
    el.status.textContent = on
      ? t("recording.status.on", { time: clock(rec.started_at) })
      : t("recording.status.off");
    el.consents.hidden = !on;
    el.summary.hidden = !on;
    if (!on) {
      el.consents.replaceChildren();
      return;
    }
    const rows = this.rows();
    const counts = { accepted: 0, refused: 0, pending: 0 };
    for (const r of rows) counts[r.status] += 1;
    el.summary.textContent = t("recording.consent.summary", counts);
    el.summary.dataset.refused = String(counts.refused);
    el.consents.replaceChildren(
      ...(rows.length ? rows.map((r) => this.item(r)) : [h("li.empty", { text: t("recording.consent.nobody") })]),
    );
  }

  /**
   * Everyone asked (joined now, except the recorder) and everyone who answered (even if
   * they left since).
   * @returns {{id: string, name: string, role: string, side?: string|null, status: "accepted"|"refused"|"pending", at: number, here: boolean}[]}
   */
  rows() {
    const consents = this.room.recording?.consents || {};
    const rows = new Map();
    for (const p of this.room.participants.values()) {
      if (p.role === "recorder") continue;
      rows.set(p.id, {
        id: p.id, name: p.name, role: p.role, side: p.side, status: "pending", at: 0, here: true,
      });
    }
    for (const [id, c] of Object.entries(consents)) {
      const row = rows.get(id) || { id, name: c.name, role: c.role, here: false };
      row.status = c.accepted ? "accepted" : "refused";
      row.at = c.at;
      rows.set(id, row);
    }
    return [...rows.values()].sort(
      (a, b) =>
        STATUS_ORDER[a.status] - STATUS_ORDER[b.status] ||
        (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9) ||
        a.name.localeCompare(b.name),
    );
  }

  item(r) {
    const icon = { accepted: ICONS.check, refused: ICONS.cross, pending: ICONS.wait }[r.status];
    const text =
      r.status === "pending"
        ? t("recording.consent.pending")
        : t(`recording.consent.${r.status}`, { time: clock(r.at) });
    return h(
      "li.participant.consent",
      { dataset: { participantId: r.id, role: r.role, consent: r.status } },
      h("span.avatar", { "aria-hidden": "true", text: initial(r.name) }),
      h(
        "span.p-main",
        {},
        h("span.p-name", { text: r.name }),
        r.id === this.room.self?.id ? h("span.p-you", { text: t("room.you") }) : null,
        roleBadge(r),
        r.here ? null : h("span.hint", { text: t("recording.consent.left") }),
      ),
      h("span.consent-status", { class: `consent-${r.status}`, html: icon }, h("span", { text })),
    );
  }
}
