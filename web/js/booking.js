/**
 * A party's booking page (`/booking#code=…&key=…`, linked from their own progress page):
 * their bookings (move or cancel, with a reason), the kinds of expert they may consult,
 * and the free slots of the kind chosen (or of their case's mediator); a tap books it.
 *
 * The code and key stay in the fragment (never sent as a page request); the API gets them
 * in the query (`key` is redacted in the access log). Big buttons with words, for elderly
 * users on a phone; times in the browser's zone, with the date spelled out.
 *
 * Stable ids: `#booking-kinds` (buttons with `data-kind`; "" is the mediator),
 * `#booking-slots` (buttons `.booking-slot` with `data-starts-at`), `#booking-list`
 * (`.booking-item` with `data-booking-id`, `data-status`), `#booking-error`.
 * `document.body.dataset.state`: loading, ready, error.
 * @module booking
 */
import { errorText, getLang, initI18n, onLangChange, t } from "./i18n.js";
import { h, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
const credential = `code=${encodeURIComponent(params.get("code") || "")}&key=${encodeURIComponent(params.get("key") || "")}`;

const state = { listed: null, kind: null, slots: [], moving: null };

async function api(method, path, body) {
  const sep = path.includes("?") ? "&" : "?";
  const res = await fetch(`${path}${sep}${credential}`, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: "omit",
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    const error = new Error(answer.message || res.statusText);
    error.code = answer.error || "network";
    throw error;
  }
  return answer;
}

function when(ts) {
  return new Date(ts * 1000).toLocaleString(getLang(), {
    month: "long",
    day: "numeric",
    weekday: "long",
    hour: "2-digit",
    minute: "2-digit",
  });
}

function fail(e) {
  const el = $("booking-error");
  el.hidden = false;
  el.textContent = errorText(e.code || "network", e.message || "", ["booking.error", "reason"]);
}

async function load() {
  state.listed = await api("GET", "/api/bookings");
  render();
}

async function choose(kind) {
  state.kind = kind;
  const q = kind ? `?specialty=${encodeURIComponent(kind)}` : "";
  try {
    state.slots = (await api("GET", `/api/availability${q}`)).slots;
  } catch (e) {
    fail(e);
    return;
  }
  render();
}

async function book(slot) {
  $("booking-error").hidden = true;
  try {
    if (state.moving) {
      const reason = prompt(t("booking.reason.move")) || "";
      if (!reason.trim()) return;
      await api("PUT", `/api/bookings/${state.moving}`, { starts_at: slot.starts_at, reason: reason.trim() });
      state.moving = null;
      toast(t("booking.moved"));
    } else {
      const body = { provider_kind: slot.provider_kind, provider_id: slot.provider_id, starts_at: slot.starts_at };
      if (slot.specialty) body.specialty = slot.specialty;
      await api("POST", "/api/bookings", body);
      toast(t("booking.done"));
    }
  } catch (e) {
    fail(e);
  }
  await load();
  if (state.kind !== null) await choose(state.kind);
}

async function cancel(booking) {
  const reason = prompt(t("booking.reason.cancel")) || "";
  if (!reason.trim()) return;
  try {
    await api("DELETE", `/api/bookings/${booking.booking_id}`, { reason: reason.trim() });
    toast(t("booking.cancelled"));
  } catch (e) {
    fail(e);
  }
  await load();
}

function render() {
  const listed = state.listed;
  if (!listed) return;
  $("booking-case").textContent = t("booking.case", { number: listed.case_number });
  const active = listed.bookings.filter((b) => b.status === "active");
  $("booking-none").hidden = active.length > 0;
  $("booking-list").replaceChildren(
    ...active.map((b) =>
      h(
        "li.booking-item",
        { dataset: { bookingId: b.booking_id, status: b.status } },
        h("strong", { text: when(b.starts_at) }),
        " ",
        h("span", { text: t("booking.with", { name: b.provider_name, kind: b.specialty || t("booking.mediator") }) }),
        h(
          "p",
          {},
          h("button.btn.big", {
            type: "button",
            dataset: { action: "move" },
            text: t("booking.move"),
            on: {
              click: () => {
                state.moving = b.booking_id;
                toast(t("booking.move.hint"));
                choose(b.provider_kind === "mediator" ? "" : b.specialty || "");
              },
            },
          }),
          " ",
          h("button.btn.big.danger-outline", {
            type: "button",
            dataset: { action: "cancel" },
            text: t("booking.cancel"),
            on: { click: () => cancel(b) },
          }),
        ),
      ),
    ),
  );
  const kinds = [...listed.kinds.map((k) => [k, k]), ...(listed.has_mediator ? [["", t("booking.mediator")]] : [])];
  $("booking-kinds").replaceChildren(
    ...kinds.map(([value, label]) =>
      h(`button.btn.big${state.kind === value ? ".primary" : ""}`, {
        type: "button",
        dataset: { kind: value },
        "aria-pressed": String(state.kind === value),
        text: label,
        on: { click: () => choose(value) },
      }),
    ),
  );
  $("booking-no-slots").hidden = state.kind === null || state.slots.length > 0;
  $("booking-slots").replaceChildren(
    ...state.slots.map((s) =>
      h(
        "li",
        {},
        h("button.btn.big.booking-slot", {
          type: "button",
          dataset: { startsAt: String(s.starts_at), providerId: s.provider_id },
          text: t(state.moving ? "booking.slot.move" : "booking.slot", { when: when(s.starts_at), name: s.provider_name }),
          on: { click: () => book(s) },
        }),
      ),
    ),
  );
}

async function main() {
  initI18n();
  onLangChange(render);
  try {
    await load();
  } catch (e) {
    fail(e);
    document.body.dataset.state = "error";
    return;
  }
  document.body.dataset.state = "ready";
}

main();
