/**
 * The recordings page (`/recordings`): list, play and download recordings.
 *
 * Who may: a mediator of the room (their invite token, which the console passes in the
 * URL fragment `#token=...`, never in the query string), an archivist (a token made
 * with `tiaojie archivist-token`, pasted into the form), or a staff account logged in
 * in this browser (its session: an archivist, the room's mediator account). The token is sent only in
 * `Authorization: Bearer` headers. A `<video>` cannot send headers, so playback and
 * download links carry a short-lived playback ticket for one recording
 * (`POST /api/recordings/{id}/ticket`, 10 minutes), fetched when the recording is
 * opened and renewed before it runs out.
 *
 * Contract with tests: `document.body.dataset.state` is `empty` (no token yet),
 * `loading`, `ready` or `error` (then `#recordings-error` carries `data-reason`, the
 * error code). Each recording is `<details class="recording" data-recording-id>`;
 * its segments are `li.segment[data-segment]` with `[data-action="play"]` and
 * `a[data-action="download"]`; evidence files are `a[data-file]`. The player is
 * `#player-video`.
 *
 * The search form (`#search-form`, `#search-input`) asks both lists again with `?q=`
 * (room title or id, recording id, a participant's or signer's name, a case number).
 * Each recording card is titled by its room (`.rec-room`), lists the agreements bound to
 * it (`li.rec-agreement[data-code]`, a link to the agreement's card below) and offers the
 * whole recording as one ZIP for `tiaojie verify` (`a[data-action="download-zip"]`, with
 * a ticket, once it is sealed). Times are shown in the server's zone (`timezone` of the
 * list, `#timezone-note`), never the browser's.
 *
 * Below the recordings, the agreements of the same rooms (`GET /api/agreements`, same
 * token): each is `article.agreement[data-code][data-status][data-room-id]` with its
 * signers (`li.agreement-signer[data-role][data-signed]`), the PDF's sha256 and, once
 * signed, `button[data-action="download-pdf"]`, which fetches the PDF with the token in
 * the `Authorization` header into a Blob and saves it (the token never goes in a URL).
 * A failure to list or download them shows in `#agreements-error` (`data-reason`).
 *
 * @module recordings
 */
import {
  ApiError,
  callJson,
  currentSession,
  downloadAgreementPdf,
  sessionCredential,
  takeTokenFromHash,
  tokenFromHash,
} from "./api.js";
import { errorText as reasonText, initI18n, onLangChange, t } from "./i18n.js";
import { ICONS } from "./icons.js";
import { roleLabel } from "./roles.js";
import { h } from "./ui.js";

/** Renew a playback ticket when it has less than this left (seconds). */
const TICKET_MARGIN_S = 90;
const EVIDENCE_FILES = ["chain.jsonl", "recording.json", "recorder.pub.pem"];

const $ = (id) => document.getElementById(id);

/** This tab's token from the URL fragment, kept while the address bar no longer shows it. */
const TOKEN_KEY = "tiaojie.recordings.token";

const state = {
  /** @type {string|import("./api.js").SessionCredential} a token, or the staff session */
  token: "",
  /** the staff account whose session reads the archive (no token given) */
  staffName: "",
  /** @type {any[]} */
  recordings: [],
  /** @type {any[]} the agreements of the same rooms */
  agreements: [],
  /** the agreements' last error: {code, message} */
  agreementsError: null,
  /** recording id -> {ticket, expires_at} */
  tickets: new Map(),
  /** recording id -> the ticket request in flight */
  ticketRequests: new Map(),
  /** what the player shows: {recordingId, name, label} */
  playing: null,
  /** the last error: {code, message} */
  error: null,
  /** what the lists were searched for (`?q=`), "" for everything */
  search: "",
  /** the IANA zone the server shows times in (its --timezone) */
  timezone: "Asia/Shanghai",
};

// ---------------------------------------------------------------- REST

/**
 * Call the recordings API with the token in a header.
 * @returns {Promise<any>}
 */
function api(method, path) {
  return callJson(method, path, state.token);
}

const recordingPath = (id) => `/api/recordings/${encodeURIComponent(id)}`;

/** A file URL of a recording, with a ticket (`name` may be `segments/....mp4`). */
function fileUrl(recordingId, name, ticket, download) {
  const path = name.split("/").map(encodeURIComponent).join("/");
  const q = new URLSearchParams({ ticket });
  if (download) q.set("download", "1");
  return `${recordingPath(recordingId)}/files/${path}?${q}`;
}

function ticketFresh(recordingId) {
  const tk = state.tickets.get(recordingId);
  return !!tk && tk.expires_at - Date.now() / 1000 > TICKET_MARGIN_S;
}

/** A playback ticket for one recording (cached until close to its expiry). */
async function ticketFor(recordingId) {
  if (!ticketFresh(recordingId)) {
    let pending = state.ticketRequests.get(recordingId);
    if (!pending) {
      pending = api("POST", `${recordingPath(recordingId)}/ticket`).finally(() =>
        state.ticketRequests.delete(recordingId),
      );
      state.ticketRequests.set(recordingId, pending);
    }
    const body = await pending;
    state.tickets.set(recordingId, { ticket: body.ticket, expires_at: body.expires_at });
  }
  return state.tickets.get(recordingId).ticket;
}

// ---------------------------------------------------------------- formatting

function lang() {
  return document.documentElement.lang || undefined;
}

/** Options with the server's zone (an unknown zone: the browser's, rather than nothing). */
function zoned(options) {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: state.timezone });
    return { ...options, timeZone: state.timezone };
  } catch {
    return options;
  }
}

function dateTime(seconds) {
  if (!seconds) return "—";
  return new Date(seconds * 1000).toLocaleString(
    lang(),
    zoned({
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    }),
  );
}

function time(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleTimeString(
    lang(),
    zoned({ hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }),
  );
}

/** What the page says of its zone: 北京时间 for Asia/Shanghai in Chinese, else its name. */
function showTimezone() {
  const beijing = ["Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC"].includes(state.timezone);
  const zone = beijing && lang()?.startsWith("zh") ? "北京时间" : state.timezone;
  $("timezone-note").textContent = t("recordings.timezone", { zone });
  $("timezone-note").dataset.timezone = state.timezone;
}

/** A participant's role: the agreement's 申请人/被申请人 where the recording knows them. */
function personRole(role) {
  return role === "applicant" || role === "respondent" ? t(`agreement.role.${role}`) : roleLabel(role);
}

function duration(from, to) {
  if (!from || !to || to < from) return "";
  const s = Math.round(to - from);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  if (hours) return t("recordings.duration.h", { h: hours, m: minutes });
  if (minutes) return t("recordings.duration.m", { m: minutes, s: secs });
  return t("recordings.duration.s", { s: secs });
}

function size(bytes) {
  if (!bytes) return "";
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Translated text for an error code (the server's message when we have none). */
function errorText(code, message) {
  return reasonText(code, message, ["recordings.error", "reason"]);
}

// ---------------------------------------------------------------- page state

function setState(name) {
  document.body.dataset.state = name;
}

function showError(code, message = "") {
  const el = $("recordings-error");
  state.error = code ? { code, message } : null;
  el.hidden = !code;
  if (code) {
    el.dataset.reason = code;
    el.textContent = errorText(code, message);
  } else {
    delete el.dataset.reason;
    el.textContent = "";
  }
}

async function load() {
  const submit = $("token-submit");
  stopPlayer();
  state.recordings = [];
  state.agreements = [];
  state.tickets.clear();
  $("recordings-section").hidden = true;
  $("recording-list").replaceChildren();
  $("agreements-section").hidden = true;
  $("agreement-list").replaceChildren();
  showAgreementsError("");
  if (!state.token) {
    setState("empty");
    showError("");
    return;
  }
  setState("loading");
  showError("");
  submit.disabled = true;
  const query = state.search ? `?${new URLSearchParams({ q: state.search })}` : "";
  const agreements = api("GET", `/api/agreements${query}`);
  agreements.catch(() => {}); // handled in loadAgreements (the recordings' error wins)
  try {
    const body = await api("GET", `/api/recordings${query}`);
    if (typeof body.timezone === "string") state.timezone = body.timezone;
    state.recordings = (body.recordings || []).sort(
      (a, b) => (b.started_at || 0) - (a.started_at || 0),
    );
    $("search-form").hidden = false;
    showTimezone();
    renderList();
    await loadAgreements(agreements);
    setState("ready");
  } catch (e) {
    const code = e instanceof ApiError ? e.code : "unknown";
    showError(code, e?.message);
    setState("error");
    $("token-input").focus();
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- the list

function renderList() {
  const list = $("recording-list");
  const open = new Set(
    [...list.querySelectorAll("details[open]")].map((d) => d.dataset.recordingId),
  );
  const first = !list.childElementCount;
  $("recordings-section").hidden = false;
  $("recordings-count").textContent = String(state.recordings.length);
  $("recordings-empty").hidden = state.recordings.length > 0;
  $("recordings-empty").textContent = t(state.search ? "recordings.search.none" : "recordings.empty");
  list.replaceChildren(
    ...state.recordings.map((rec, i) =>
      recordingCard(rec, first ? i === 0 : open.has(rec.recording_id)),
    ),
  );
}

function statusBadge(rec) {
  const known = ["sealed", "recording", "starting"];
  const status = known.includes(rec.status) ? rec.status : "unsealed";
  return h("span.badge.rec-status", {
    class: `rec-status-${status}`,
    dataset: { status },
    text: t(`recordings.status.${status}`),
  });
}

/** Segments from the summary, plus any file on disk the summary does not list. */
function segmentsOf(rec) {
  const segments = [...(rec.segments || [])];
  const listed = new Set(segments.map((s) => s.name));
  for (const file of rec.segment_files || []) {
    const name = `segments/${file}`;
    if (!listed.has(name)) segments.push({ name, source: file.endsWith("-screen.mp4") ? "screen" : "camera" });
  }
  return segments.sort((a, b) => a.name.localeCompare(b.name));
}

function recordingCard(rec, open) {
  const id = rec.recording_id;
  const people = Object.entries(rec.participants || {}).filter(([, p]) => p.role !== "recorder");
  const span = duration(rec.started_at, rec.stopped_at);
  const card = h(
    "details.card.recording",
    {
      id: `recording-${id}`,
      dataset: { recordingId: id, status: rec.status || "" },
      open: open || undefined,
    },
    h(
      "summary",
      {},
      h(
        "span.rec-title",
        {},
        h("span.rec-room", { text: rec.room_title || rec.room_id }),
        h("span.rec-when", { text: dateTime(rec.started_at) }),
        span ? h("span.rec-span", { text: span }) : null,
        statusBadge(rec),
      ),
      h("span.rec-meta", { text: metaText(rec, people.length) }),
    ),
  );
  card.append(
    rec.segments
      ? recordingBody(rec, card)
      : h("div.rec-body", {}, h("p.hint", { text: t("recordings.loading") })),
  );
  card.addEventListener("toggle", () => {
    if (card.open) openCard(rec, card);
  });
  if (open) openCard(rec, card);
  return card;
}

/**
 * An opened card: its details (segments: GET /api/recordings/{id}, once), then its links.
 */
async function openCard(rec, card) {
  if (!rec.segments) {
    try {
      Object.assign(rec, await api("GET", recordingPath(rec.recording_id)));
    } catch (e) {
      onTicketError(e);
      return;
    }
    if (!card.isConnected) return;
    card.querySelector(".rec-body").replaceWith(recordingBody(rec, card));
    const people = Object.values(rec.participants || {}).filter((p) => p.role !== "recorder");
    card.querySelector(".rec-meta").textContent = metaText(rec, people.length);
  }
  prepareLinks(rec, card);
}

function metaText(rec, people) {
  return t("recordings.meta", {
    people,
    segments: rec.segments ? segmentsOf(rec).length : "…",
    room: rec.room_id,
  });
}

/** The agreements bound to a recording, each a link to its card in the list below. */
function boundAgreements(rec) {
  const bound = Array.isArray(rec.agreements) ? rec.agreements : [];
  if (!bound.length) return h("p.hint", { text: t("recordings.bound.none") });
  return h(
    "ul.rec-agreements",
    {},
    ...bound.map((a) => {
      const status = AGREEMENT_STATUSES.includes(a.status) ? a.status : "drafting";
      return h(
        "li.rec-agreement",
        { dataset: { code: a.code, status } },
        h(
          "a.file-link",
          { href: `#agreement-${a.code}`, dataset: { action: "show-agreement" } },
          h("span", { text: a.case_number || t("recordings.agreements.no_case") }),
        ),
        h("span.badge.agreement-status", { dataset: { status }, text: t(`agreement.status.${status}`) }),
      );
    }),
  );
}

/** The whole recording as one ZIP, for `tiaojie verify` offline: once it is sealed. */
function zipLink(rec) {
  if (rec.status === "recording") {
    return h("p.hint.rec-zip", { text: t("recordings.zip.later") });
  }
  return h(
    "p.rec-zip",
    {},
    h(
      "a.btn.small.primary",
      { dataset: { action: "download-zip" }, download: "", rel: "noopener" },
      h("span", { html: ICONS.download }),
      h("span", { text: t("recordings.zip") }),
    ),
    h("span.hint", { text: t("recordings.zip.hint") }),
  );
}

function recordingBody(rec, card) {
  const people = Object.entries(rec.participants || {}).filter(([, p]) => p.role !== "recorder");
  const segments = segmentsOf(rec);
  const body = h("div.rec-body");

  body.append(zipLink(rec));
  body.append(h("h3", { text: t("recordings.bound") }));
  body.append(boundAgreements(rec));

  body.append(h("h3", { text: t("recordings.participants") }));
  body.append(
    people.length
      ? h("ul.rec-people", {}, ...people.map(([pid, p]) => personItem(pid, p)))
      : h("p.hint", { text: t("recordings.participants.none") }),
  );

  body.append(h("h3", { text: t("recordings.segments") }));
  body.append(
    segments.length
      ? h("ul.rec-segments", {}, ...segments.map((s) => segmentItem(rec, s)))
      : h("p.hint", { text: t("recordings.segments.none") }),
  );

  body.append(h("h3", { text: t("recordings.evidence") }));
  const files = [...EVIDENCE_FILES];
  if (rec.timestamp?.file) files.push(rec.timestamp.file);
  body.append(
    h(
      "ul.rec-files",
      {},
      ...files.map((name) =>
        h(
          "li",
          {},
          h(
            "a.file-link",
            { dataset: { file: name, action: "download" }, download: "", rel: "noopener" },
            h("span", { html: ICONS.download }),
            h("span.file-label", { text: t(`recordings.file.${name}`) }),
            h("code", { text: name }),
          ),
        ),
      ),
    ),
  );
  body.append(sealFacts(rec));
  for (const a of body.querySelectorAll("a[data-action='download'], a[data-action='download-zip']")) {
    a.addEventListener("click", (e) => onDownloadClick(e, rec, card, a));
  }
  return body;
}

function personItem(pid, p) {
  const consent = p.consent === "consent" ? "accepted" : p.consent === "refusal" ? "refused" : "none";
  const consentText =
    consent === "none"
      ? t("recordings.consent.none")
      : t(`recordings.consent.${consent}`, { time: time(p.consent_at) });
  return h(
    "li.rec-person",
    { dataset: { participantId: pid, consent } },
    h("span.p-name", { text: p.name || pid }),
    p.role ? h("span.badge", { class: `role-${p.role}`, text: personRole(p.role) }) : null,
    h("span.consent-status", { class: `consent-${consent === "none" ? "pending" : consent}`, text: consentText }),
  );
}

function segmentItem(rec, s) {
  const file = s.name.replace(/^segments\//, "");
  const number = file.slice(0, 4);
  const who = s.participant_name || s.participant_id || "";
  // the role as the recorder saw it in the room (the participant's token), never the name
  const role = rec.participants?.[s.participant_id]?.role || "";
  const bits = [
    t(s.source === "screen" ? "recordings.source.screen" : "recordings.source.camera"),
    s.start ? `${time(s.start)}–${time(s.end) || "…"}` : "",
    duration(s.start, s.end),
    size(s.bytes),
  ].filter(Boolean);
  const label = t("recordings.segment.label", { n: number, name: who || file });
  return h(
    "li.segment",
    { dataset: { segment: s.name, status: s.status || "" } },
    h(
      "span.segment-main",
      {},
      h("span.segment-name", { text: label }),
      role ? h("span.badge", { class: `role-${role}`, text: personRole(role) }) : null,
      h("span.hint", { text: bits.join(" · ") }),
      s.status && s.status !== "closed"
        ? h("span.badge", { text: t(`recordings.segment.${s.status}`) })
        : null,
    ),
    h(
      "span.segment-actions",
      {},
      h(
        "button.btn.small.primary",
        {
          type: "button",
          dataset: { action: "play" },
          on: { click: () => play(rec, s.name, label) },
        },
        h("span", { html: ICONS.play }),
        h("span", { text: t("recordings.play") }),
      ),
      h(
        "a.btn.small",
        { dataset: { action: "download", file: s.name }, download: "", rel: "noopener" },
        h("span", { html: ICONS.download }),
        h("span", { text: t("recordings.download") }),
      ),
    ),
  );
}

function sealFacts(rec) {
  const rows = [];
  if (rec.seal) {
    rows.push([t("recordings.sealed_at"), dateTime(rec.seal.time)]);
    rows.push([t("recordings.seal_hash"), rec.seal.hash]);
  }
  if (rec.chain_head) rows.push([t("recordings.chain_head"), rec.chain_head]);
  if (rec.key_id) rows.push([t("recordings.key_id"), rec.key_id]);
  rows.push([t("recordings.id"), rec.recording_id]);
  if (rec.timestamp?.error) rows.push([t("recordings.timestamp_error"), rec.timestamp.error]);
  return h(
    "dl.rec-facts",
    {},
    ...rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, h("code", { text: String(v) }))]),
  );
}

// ---------------------------------------------------------------- agreements

async function loadAgreements(request) {
  try {
    const body = await request;
    state.agreements = Array.isArray(body.agreements) ? body.agreements : [];
    showAgreementsError("");
  } catch (e) {
    state.agreements = [];
    showAgreementsError(e instanceof ApiError ? e.code : "unknown", e?.message);
  }
  renderAgreements();
}

function showAgreementsError(code, message = "") {
  const el = $("agreements-error");
  state.agreementsError = code ? { code, message } : null;
  el.hidden = !code;
  if (code) {
    el.dataset.reason = code;
    el.textContent = errorText(code, message);
  } else {
    delete el.dataset.reason;
    el.textContent = "";
  }
}

function renderAgreements() {
  $("agreements-section").hidden = false;
  $("agreements-count").textContent = String(state.agreements.length);
  $("agreements-empty").hidden = state.agreements.length > 0 || !!state.agreementsError;
  $("agreement-list").replaceChildren(...state.agreements.map(agreementCard));
}

const AGREEMENT_STATUSES = ["drafting", "signing", "sealing", "signed"];
const SIGNER_ROLES = ["applicant", "respondent", "mediator"];

function agreementCard(a) {
  const status = AGREEMENT_STATUSES.includes(a.status) ? a.status : "drafting";
  const signers = Array.isArray(a.signers) ? a.signers : [];
  const facts = [];
  if (a.pdf_sha256) facts.push([t("recordings.agreements.pdf_sha256"), a.pdf_sha256]);
  if (a.sealed_at) facts.push([t("recordings.agreements.sealed_at"), dateTime(a.sealed_at)]);
  facts.push([t("recordings.agreements.code"), a.code]);
  const download = a.pdf_available
    ? h(
        "button.btn.small.primary",
        { type: "button", dataset: { action: "download-pdf" } },
        h("span", { html: ICONS.download }),
        h("span", { text: t("agreement.download") }),
      )
    : h("p.hint", { text: t("recordings.agreements.not_signed") });
  if (a.pdf_available) download.addEventListener("click", () => onPdfClick(a, download));
  const recording = a.recording_id
    ? h(
        "p.agreement-recording",
        {},
        h(
          "a.file-link",
          {
            href: `#recording-${a.recording_id}`,
            dataset: { action: "show-recording", recordingId: a.recording_id },
          },
          h("span", { text: t("recordings.agreements.recording", { id: a.recording_id }) }),
        ),
      )
    : null;
  if (recording) recording.querySelector("a").addEventListener("click", () => openRecording(a.recording_id));
  return h(
    "article.card.agreement",
    { id: `agreement-${a.code}`, dataset: { code: a.code, status, roomId: a.room_id } },
    h(
      "div.agreement-head",
      {},
      h("span.agreement-case", { text: a.case_number || t("recordings.agreements.no_case") }),
      h("span.badge.agreement-status", { dataset: { status }, text: t(`agreement.status.${status}`) }),
    ),
    h("p.rec-meta", {
      text: t("recordings.agreements.meta", {
        room: a.room_title || a.room_id,
        time: dateTime(a.updated_at),
      }),
    }),
    recording,
    h("h3", { text: t("recordings.agreements.signers") }),
    h("ul.agreement-signers", {}, ...signers.map(signerItem)),
    h(
      "dl.rec-facts",
      {},
      ...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, h("code", { text: String(v) }))]),
    ),
    h("div.agreement-actions", {}, download),
  );
}

function signerItem(s) {
  const role = SIGNER_ROLES.includes(s.role) ? s.role : "";
  const signed = !!s.signed_at;
  return h(
    "li.agreement-signer",
    { dataset: { role, signed: String(signed) } },
    h("span.p-name", { text: s.name || "—" }),
    role
      ? h("span.badge", {
          class: role === "mediator" ? "role-mediator" : "role-party",
          text: t(`agreement.role.${role}`),
        })
      : null,
    h("span.signed-at", {
      text: signed ? t("agreement.signer.signed", { time: dateTime(s.signed_at) }) : t("agreement.signer.pending"),
    }),
  );
}

async function onPdfClick(a, button) {
  if (button.disabled) return;
  button.disabled = true;
  showAgreementsError("");
  try {
    await downloadAgreementPdf(state.token, a.code);
  } catch (e) {
    showAgreementsError(e instanceof ApiError ? e.code : "unknown", e?.message);
  } finally {
    button.disabled = false;
  }
}

/** Open (and show) a recording's card, from the link of an agreement bound to it. */
function openRecording(recordingId) {
  const card = document.getElementById(`recording-${recordingId}`);
  if (card) card.open = true;
}

// ---------------------------------------------------------------- links with tickets

/** Give the card's download links a fresh ticket. */
async function prepareLinks(rec, card) {
  try {
    const ticket = await ticketFor(rec.recording_id);
    for (const a of card.querySelectorAll("a[data-action='download']")) {
      a.href = fileUrl(rec.recording_id, a.dataset.file, ticket, true);
    }
    for (const a of card.querySelectorAll("a[data-action='download-zip']")) {
      a.href = `${recordingPath(rec.recording_id)}/archive.zip?${new URLSearchParams({ ticket })}`;
    }
  } catch (e) {
    onTicketError(e);
  }
}

async function onDownloadClick(event, rec, card, a) {
  if (ticketFresh(rec.recording_id) && a.href) return; // the link as it is
  event.preventDefault();
  await prepareLinks(rec, card);
  if (ticketFresh(rec.recording_id)) a.click();
}

function onTicketError(e) {
  const code = e instanceof ApiError ? e.code : "unknown";
  showError(code, e?.message);
  if (["token_invalid", "token_expired", "token_revoked", "forbidden", "room_ended"].includes(code)) {
    setState("error");
  }
}

// ---------------------------------------------------------------- the player

async function play(rec, name, label) {
  const video = /** @type {HTMLVideoElement} */ ($("player-video"));
  let ticket;
  try {
    ticket = await ticketFor(rec.recording_id);
  } catch (e) {
    onTicketError(e);
    return;
  }
  state.playing = { recordingId: rec.recording_id, name, label };
  $("player").hidden = false;
  $("player").dataset.segment = name;
  $("player-title").textContent = label;
  showPlayerError("");
  video.src = fileUrl(rec.recording_id, name, ticket, false);
  $("player").scrollIntoView({ behavior: "smooth", block: "start" });
  try {
    await video.play();
  } catch (e) {
    // autoplay refused: the controls are there to press play
    if (e?.name !== "NotAllowedError" && e?.name !== "AbortError") console.warn(e);
  }
}

function stopPlayer() {
  const video = /** @type {HTMLVideoElement} */ ($("player-video"));
  video.pause();
  video.removeAttribute("src");
  video.load();
  state.playing = null;
  $("player").hidden = true;
  delete $("player").dataset.segment;
}

function showPlayerError(text) {
  $("player-error").hidden = !text;
  $("player-error").textContent = text;
}

function onVideoError() {
  const video = /** @type {HTMLVideoElement} */ ($("player-video"));
  if (!state.playing || !video.getAttribute("src")) return;
  const code = video.error?.code;
  // MEDIA_ERR_SRC_NOT_SUPPORTED is also what an expired ticket (a 401) looks like
  const key =
    code === 3 ? "recordings.player.decode" : code === 2 ? "recordings.player.network" : "recordings.player.error";
  showPlayerError(t(key));
  if (!ticketFresh(state.playing.recordingId)) state.tickets.delete(state.playing.recordingId);
}

// ---------------------------------------------------------------- start

function main() {
  initI18n();
  onLangChange(() => {
    if (!$("search-form").hidden) showTimezone();
    if (state.recordings.length || state.search) renderList();
    if (!$("agreements-section").hidden) renderAgreements();
    if (state.error) showError(state.error.code, state.error.message);
    if (state.agreementsError) showAgreementsError(state.agreementsError.code, state.agreementsError.message);
    if (state.playing) $("player-title").textContent = state.playing.label;
    if (state.staffName) showStaffSession();
  });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) {
      showError("token_missing");
      setState("error");
      $("token-input").focus();
      return;
    }
    state.token = token;
    $("recordings-session").hidden = true; // the token, not the staff session, from now
    try {
      sessionStorage.removeItem(TOKEN_KEY); // a reload forgets a pasted token, as before
    } catch {
      // storage refused: nothing kept
    }
    load();
  });
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.search = $("search-input").value.trim().slice(0, 200);
    load();
  });
  $("player-close").addEventListener("click", stopPlayer);
  $("player-video").addEventListener("error", onVideoError);
  window.addEventListener("hashchange", () => {
    const token = tokenFromHash() ? takeTokenFromHash(TOKEN_KEY) : "";
    if (token && token !== state.token) {
      state.token = token;
      $("token-input").value = token;
      load();
    }
  });
  // Renew the tickets of open recordings before they run out.
  setInterval(() => {
    for (const card of document.querySelectorAll("details.recording[open]")) {
      const rec = state.recordings.find((r) => r.recording_id === card.dataset.recordingId);
      if (rec && !ticketFresh(rec.recording_id)) prepareLinks(rec, card);
    }
  }, 30_000);

  state.token = takeTokenFromHash(TOKEN_KEY);
  $("token-input").value = state.token;
  if (state.token) {
    load();
  } else {
    useStaffSession().then(load);
  }
}

/**
 * Without a token: the staff session this browser holds, if any (an archivist or a
 * mediator account reads the archive with it, docs/ACCOUNTS.md); `#recordings-session`
 * says who. A token pasted or passed in the fragment still takes over.
 */
async function useStaffSession() {
  let session = null;
  try {
    session = await currentSession();
  } catch {
    return; // no answer: the token form still works
  }
  if (!session || session.via !== "session" || state.token) return;
  state.token = sessionCredential(session.csrf_token);
  state.staffName = session.account.name;
  showStaffSession();
  $("recordings-session").hidden = false;
}

function showStaffSession() {
  $("recordings-session").textContent = t("recordings.session", { name: state.staffName });
}

main();
