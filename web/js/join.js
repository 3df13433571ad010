/**
 * The join page (`/join#token=...`): check the invite, preview camera and microphone
 * (and, on the `check` screen, the device check: device-check.js; `/join?check=1#token=`
 * opens it first), choose a display name, connect, wait in the lobby, then the video room.
 * Every outcome has its own screen (see {@link SCREENS}).
 *
 * Several nodes (docs/PROTOCOL.md, "Several nodes"): when the room's media is on another
 * node, `/api/me` names it (`node_url`) and the page opens itself there at once, with
 * the same token in the fragment; a connection refused with `redirect` does the same and
 * joins there straight away with the name chosen here. If the room's node stops
 * answering (it died), the page goes to another node `/api/me` named (`nodes`), which
 * places the room again, and joins there with the same name.
 *
 * @module join
 */
import { takeTokenFromHash, ApiError } from "./api.js";
import { has, initI18n, onLangChange, t } from "./i18n.js";
import { inviteAnswer, TOKEN_KEY } from "./invite-check.js";
import { MediaPreview } from "./media-preview.js";
import { personRole } from "./roles.js";
import { Signalling } from "./signalling.js";
import {
  showScreen,
  setI18nText,
  charCount,
  confirmAction,
  currentScreen,
  fillDeviceSelect,
} from "./ui.js";

const NAME_MAX = 64;

/**
 * The modules (names without ".js") of the room's media: the three the page imports to
 * enter (room-state, media-session, stats) and theirs, at every level, that the join
 * screen has not loaded already (tests/test_web_assets.py keeps this list whole). They
 * are loaded and run once the join screen shows: all the join button needs to answer the
 * first subscriber offer.
 */
const MEDIA_MODULES = ["media-session", "publisher", "room-state", "speaking", "stats", "subscriber", "webrtc"];

/**
 * The room view's modules (room-view.js and its panels: most of the page's code) that
 * neither the join screen nor the media loaded (tests/test_web_assets.py keeps this list
 * whole). Named as `modulepreload` once the join screen shows (fetched, not run), and run
 * only once the first subscriber answer is sent: running them took the page's one
 * thread for ~100 ms while the socket.io connection and the answer waited.
 */
const VIEW_MODULES = [
  "agreement-panel",
  "agreement-sign",
  "agreement-view",
  "caucus-panel",
  "chat-panel",
  "chime",
  "console-tabs",
  "icons",
  "mediator-console",
  "recording-consent",
  "recording-controls",
  "requests",
  "room-view",
  "screening-panel",
  "separation",
  "video-grid",
];

/** @param {string[]} names */
function preloadModules(names) {
  for (const name of names) {
    const link = document.createElement("link");
    link.rel = "modulepreload";
    link.href = new URL(`${name}.js`, import.meta.url).href;
    document.head.append(link);
  }
}

/**
 * The room's media modules, loaded once the join screen shows, not before: the join
 * screen (and the invite check) need only the modules imported above. Joining does not
 * wait for them to send CONNECT (what the server sends meanwhile is held).
 * @type {Promise<[any, any, any]>|null}
 */
let mediaModules = null;
/** @type {Promise<any>|null} */
let deviceCheckModule = null;

function loadMediaModules() {
  if (!mediaModules) {
    preloadModules(MEDIA_MODULES);
    mediaModules = Promise.all([import("./room-state.js"), import("./media-session.js"), import("./stats.js")]);
    // then, while the person reads the join screen, the room view's files and the
    // device check; once joining, the view's after the first answer (`drawRoom`)
    mediaModules
      .then(() => {
        performance.mark("tiaojie:room_modules");
        const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 0));
        idle(() => {
          if (state.joining) return;
          preloadViewModules();
          loadDeviceCheckModule();
        });
      })
      .catch(() => {});
  }
  return mediaModules;
}

let viewPreloaded = false;

function preloadViewModules() {
  if (!viewPreloaded) preloadModules(VIEW_MODULES);
  viewPreloaded = true;
}

function loadDeviceCheckModule() {
  deviceCheckModule ??= import("./device-check.js");
  return deviceCheckModule;
}

/** Errors shown on the "link cannot be used" screen. */
const LINK_ERRORS = new Set([
  "token_missing",
  "token_invalid",
  "token_expired",
  "token_revoked",
  "token_wrong_room",
  "room_not_found",
]);

/** `closed.reason` -> screen (the rest go to the error screen). */
const CLOSED_SCREENS = {
  removed: "removed",
  denied: "denied",
  room_ended: "ended",
  left: "left",
};

const $ = (id) => document.getElementById(id);

const state = {
  token: "",
  /** @type {import("./api.js").MeAnswer|null} */
  me: null,
  /** @type {Signalling|null} */
  sig: null,
  /** @type {Signalling|null} the transport opened on the join screen, used by join() */
  early: null,
  joining: false,
  /** @type {import("./room-view.js").RoomView|null} made once the first answer is sent */
  view: null,
  /** @type {import("./media-session.js").MediaSession|null} */
  media: null,
  /** @type {Promise<void>|null} the first subscriber answer taken (MediaSession.start) */
  answered: null,
  drawing: false,
  finished: false,
};

const preview = new MediaPreview({ video: $("preview-video"), meter: $("mic-meter") });

// ---------------------------------------------------------------- outcomes

/** Stop media and signalling and show a final screen. */
function finish(screen) {
  state.finished = true;
  state.view?.stop();
  state.media?.stop();
  preview.stop();
  (state.sig || state.early)?.close();
  $("conn-banner").hidden = true;
  showScreen(screen);
}

/**
 * Show the screen for a refusal code (from /api/me, connect_error or closed).
 * @param {string} code
 * @param {string} [message] the server's text, used when we have no translation
 */
function showRefusal(code, message = "") {
  if (code === "room_ended") return finish("ended");
  if (LINK_ERRORS.has(code)) {
    setI18nText($("expired-message"), `reason.${code}`);
    $("screen-expired").dataset.reason = code;
    return finish("expired");
  }
  const key = `reason.${code}`;
  const known = code !== "unknown" && has(key);
  setI18nText($("error-message"), known ? key : null, message || t("reason.unknown", { code }));
  $("screen-error").dataset.reason = code;
  return finish("error");
}

/** Redirects followed in a row before the page gives up (a misconfigured node URL). */
const MAX_HOPS = 3;
/** Failed reconnection attempts (about 1 + 2 + 3 s) before the page tries another node. */
const UNREACHABLE_ATTEMPTS = 3;

/**
 * Open this page on the node that hosts the room's media, with the token (and, when the
 * person already pressed join, their name, to join there at once) in the fragment.
 * @param {string} url the node's base URL
 * @param {string} [name] the display name chosen here
 * @param {boolean} [fresh] leaving a node that stopped answering: redirects count anew
 */
function goToNode(url, name = "", fresh = false) {
  let target;
  try {
    target = new URL("/join" + location.search, url);
  } catch {
    return showRefusal("redirect");
  }
  const hops = fresh ? 0 : arrival.hops + 1;
  if (target.origin === location.origin || hops > MAX_HOPS) return showRefusal("redirect");
  const hash = new URLSearchParams({ token: state.token, hops: String(hops) });
  if (name) hash.set("name", name);
  target.hash = hash.toString();
  state.finished = true;
  state.view?.stop();
  state.media?.stop();
  preview.stop();
  (state.sig || state.early)?.close();
  showScreen("loading");
  location.replace(target.href);
}

/** What another node's redirect put in the fragment (read before the token is taken). */
const arrival = (() => {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  return { hops: Number(params.get("hops")) || 0, name: params.get("name") || "" };
})();

/** @param {{reason: string, message?: string}} payload */
function onClosed({ reason, message }) {
  if (reason === "revoked") return showRefusal("token_revoked", message);
  if (CLOSED_SCREENS[reason]) return finish(CLOSED_SCREENS[reason]);
  return showRefusal(reason || "unknown", message);
}

// ---------------------------------------------------------------- join screen

function renderJoin() {
  const { invite, room } = state.me;
  $("room-title").textContent = room.title;
  $("role-value").textContent = personRole(invite);
  $("role-value").dataset.role = invite.role;
  $("lobby-note").hidden = !(room.lobby && (invite.role === "party" || invite.role === "expert"));
  $("locked-note").hidden = !room.locked;
  $("join-button").textContent = t(state.joining ? "join.connecting" : "join.button");
  renderMediaNote();
  renderDevices();
}

const MEDIA_NOTES = {
  denied: "join.media.denied",
  none: "join.media.none",
  "audio-only": "join.media.no_camera",
  "video-only": "join.media.no_mic",
  unsupported: "join.media.unsupported",
  busy: "join.media.busy",
  error: "join.media.error",
};

function renderMediaNote() {
  const s = preview.status;
  const key = MEDIA_NOTES[s];
  const note = $("media-note");
  note.hidden = !key;
  if (key) setI18nText($("media-note-text"), key);
  note.dataset.kind = s === "audio-only" || s === "video-only" ? "info" : "warn";
  $("media-retry").hidden = !["denied", "busy", "error", "none"].includes(s);
  const starting = s === "starting" || s === "idle";
  setI18nText($("preview-placeholder-text"), starting ? "join.preview.starting" : "join.preview.off");
  $("preview").classList.toggle("has-video", preview.has("video"));
  $("preview").classList.toggle("failed", !!key && !preview.has("video"));
  $("mic-meter").classList.toggle("inactive", !preview.has("audio"));
}

function renderDevices() {
  fillDeviceSelect($("camera-select"), preview.devices.video, preview.videoDeviceId);
  fillDeviceSelect($("mic-select"), preview.devices.audio, preview.audioDeviceId);
}

/** @returns {string|null} the trimmed name, or null (and an error shown) if invalid */
function validName() {
  const input = $("name-input");
  const name = input.value.trim().replace(/\s+/g, " ");
  let key = "";
  if (!name) key = "join.name.empty";
  else if (charCount(name) > NAME_MAX) key = "join.name.long";
  const err = $("name-error");
  err.hidden = !key;
  input.setAttribute("aria-invalid", String(!!key));
  if (key) {
    setI18nText(err, key);
    input.focus();
    return null;
  }
  return name;
}

// ---------------------------------------------------------------- connecting

async function join() {
  if (state.joining || state.finished) return;
  const name = validName();
  if (!name) return;

  performance.mark("tiaojie:join");
  state.joining = true;
  const button = $("join-button");
  button.disabled = true;
  button.textContent = t("join.connecting");
  $("name-input").disabled = true;

  // Enter at once; what the server sends meanwhile is kept until the room's modules
  // (which take it) are there, so the server's work overlaps their loading.
  const sig = state.early || new Signalling({ token: state.token });
  state.sig = sig;
  sig.hold();
  sig.connect(name);
  performance.mark("tiaojie:connect_sent");
  let modules;
  try {
    modules = await loadMediaModules();
  } catch (e) {
    console.error("the room's modules:", e);
    return showRefusal("network");
  }
  const [{ RoomState }, { MediaSession }, { inboundByMid }] = modules;
  if (state.finished) return;
  sig.on("room_state", () => performance.mark("tiaojie:room_state_in"));
  const room = new RoomState(sig);
  const media = new MediaSession({
    signalling: sig,
    preview,
    expectVideo: (id) => state.view?.expectVideo(id) ?? !room.participants.get(id)?.muted?.video,
  });
  state.media = media;
  preview.attach($("lobby-video"));
  exposeForTests(room, media, inboundByMid);
  // Entering: the media first (the first watcher), the room view after the answer.
  room.watch([], ({ entered, iceServers, subscriberOffer }) => {
    const self = room.self;
    if (entered && self) {
      state.answered = media.start({ iceServers, publish: room.speaks, selfId: self.id, offer: subscriberOffer });
    }
  });

  sig.on("welcome", ({ participant, room }) => {
    performance.mark("tiaojie:welcome");
    if (state.finished) return;
    if (room) $("lobby-room-title").textContent = t("lobby.room", { title: room.title });
    $("lobby-room-title").dataset.title = room?.title || "";
    if (participant?.status === "lobby") showScreen("lobby");
    // "joined": room_state follows at once
  });
  sig.on("room_state", (payload) => {
    performance.mark("tiaojie:room_state");
    $("lobby-sent-back").hidden = true;
    if (state.finished) return;
    if (state.view) showScreen("room");
    else drawRoom(sig, room, media, payload);
  });
  // the mediator asked us to wait in the lobby (not removed): the same link, the same seat
  sig.on("sent_to_lobby", () => {
    if (state.finished) return;
    media.stop();
    $("lobby-sent-back").hidden = false;
    showScreen("lobby");
  });
  sig.on("closed", onClosed);
  sig.on("refused", (code, message, url) =>
    code === "redirect" && url ? goToNode(url, name) : showRefusal(code, message),
  );
  sig.on("disconnected", () => {
    if (!state.finished) showRefusal("network");
  });
  sig.on("reconnecting", () => {
    if (!state.finished) $("conn-banner").hidden = false;
  });
  sig.on("connected", () => {
    performance.mark("tiaojie:connected");
    $("conn-banner").hidden = true;
  });
  // several nodes, and this one is gone: another node places the room again
  sig.on("unreachable", (attempts) => {
    const other = (state.me.nodes || []).find((url) => new URL(url).origin !== location.origin);
    if (!state.finished && other && attempts >= UNREACHABLE_ATTEMPTS) goToNode(other, name, true);
  });
  sig.release();
}

/** Longest the room view waits for the first answer before it is drawn anyway. */
const DRAW_WAIT_MS = 3000;

/**
 * The first `room_state`: the media took it (the subscriber answer is under way); once
 * the answer is sent, run the room view's modules, make the view and give it that
 * `room_state` (its watchers the entering change, its handlers the notification) as if
 * it had been there, then show the room. What the server sends meanwhile is held and
 * delivered after, in order.
 * @param {Signalling} sig
 * @param {import("./room-state.js").RoomState} room
 * @param {import("./media-session.js").MediaSession} media
 * @param {object} payload the `room_state`
 */
async function drawRoom(sig, room, media, payload) {
  if (state.drawing) return;
  state.drawing = true;
  sig.hold();
  const handlers = sig.handlers();
  const watchers = room.watchers();
  try {
    let timer;
    await Promise.race([
      state.answered,
      new Promise((resolve) => {
        timer = setTimeout(resolve, DRAW_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    preloadViewModules();
    const { RoomView } = await import("./room-view.js");
    if (state.finished) return;
    performance.mark("tiaojie:view_modules");
    state.view = new RoomView({ signalling: sig, room, preview, media, token: state.token, onLeave: leave });
    room.replayEntered(watchers);
    sig.replay("room_state", [payload], handlers);
    performance.mark("tiaojie:room_drawn");
    showScreen("room");
  } catch (e) {
    console.error("the room view:", e);
    showRefusal("network");
  } finally {
    sig.release();
  }
}

async function leave() {
  if (!(await confirmAction(t("room.confirm.leave")))) return;
  if (state.finished) return;
  const ack = await state.sig?.request("leave", {});
  // `closed` (left) normally arrives first; if the server could not be reached, leave anyway
  if (!state.finished && !ack?.ok) finish("left");
}

async function leaveLobby() {
  if (state.finished) return;
  const ack = await state.sig?.request("leave", {});
  if (!state.finished && !ack?.ok) finish("left");
}

// ---------------------------------------------------------------- test hook

/**
 * `window.tiaojie`: read-only access to the media for tests and for debugging from the
 * console (documented in web/README.md). Nothing here is needed by the page itself.
 * @param {import("./room-state.js").RoomState} room
 * @param {import("./media-session.js").MediaSession} media
 * @param {typeof import("./stats.js").inboundByMid} inboundByMid
 */
function exposeForTests(room, media, inboundByMid) {
  window.tiaojie = {
    get pcPub() {
      return media.publisher?.pc ?? null;
    },
    get pcSub() {
      return media.subscriber?.pc ?? null;
    },
    get self() {
      return room.self;
    },
    get subscriberOffers() {
      return media.offersReceived;
    },
    get publisherState() {
      return media.publisher?.state ?? null;
    },
    /** Reconnections of the signalling so far (docs/PROTOCOL.md, "Reconnecting"). */
    get reconnects() {
      return state.sig?.reconnects ?? 0;
    },
    get sharingScreen() {
      return !!media.screenTrack;
    },
    media,
    room,
    /** The room view, once drawn (after the first subscriber answer). */
    get view() {
      return state.view;
    },
    /** `[{mid, source}]` as sent in the last `publish`. */
    publishedTracks: () => media.publisher?.publishedTracks() ?? [],
    /** `[{mid, participantId, publicationId, kind, source, trackId, readyState, muted}]` */
    remoteTracks: () =>
      media.remoteTracks.map(({ track, ...rest }) => ({
        ...rest,
        trackId: track.id,
        readyState: track.readyState,
        muted: track.muted,
      })),
    /** Publications this page cannot receive (the server's `unavailable`). */
    unavailable: () => media.unavailable,
    /** pcSub's inbound-rtp stats per mid, with whose track each mid carries. */
    inbound: () => inboundByMid(media.subscriber?.pc ?? null, media.subscriber?.tracks ?? new Map()),
    /** The last connection-quality grades, by participant id. */
    quality: () => Object.fromEntries(media.quality.last),
  };
}

// ---------------------------------------------------------------- start

async function main() {
  performance.mark("tiaojie:modules");
  initI18n();
  onLangChange(() => {
    if (state.me && currentScreen() === "join") renderJoin();
    const lt = $("lobby-room-title");
    if (lt.dataset.title) lt.textContent = t("lobby.room", { title: lt.dataset.title });
  });

  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    join();
  });
  $("name-input").addEventListener("input", () => {
    if (!$("name-error").hidden) validName();
  });
  $("camera-select").addEventListener("change", (e) => preview.selectDevice("video", e.target.value));
  $("mic-select").addEventListener("change", (e) => preview.selectDevice("audio", e.target.value));
  $("media-retry").addEventListener("click", () => preview.start());
  $("lobby-leave").addEventListener("click", leaveLobby);
  for (const b of document.querySelectorAll("[data-reload]")) {
    b.addEventListener("click", () => location.reload());
  }
  preview.addEventListener("statechange", () => {
    if (currentScreen() === "join") renderMediaNote();
  });
  preview.addEventListener("devicechange", renderDevices);
  window.addEventListener("hashchange", () => location.reload());

  state.token = takeTokenFromHash(TOKEN_KEY);
  if (!state.token) return showRefusal("token_missing");

  showScreen("loading");
  try {
    state.me = await inviteAnswer(state.token);
    performance.mark("tiaojie:me");
  } catch (e) {
    if (e instanceof ApiError) return showRefusal(e.code, e.message);
    throw e;
  }
  if (state.me.room?.status === "ended") return showRefusal("room_ended");
  if (state.me.node_url) return goToNode(state.me.node_url);

  $("name-input").value = arrival.name || state.me.invite.name || "";
  $("check-open").addEventListener("click", async () => {
    (await deviceCheck()).reset();
    showScreen("check");
  });
  renderJoin();
  const checkFirst = new URLSearchParams(location.search).has("check");
  if (checkFirst) await deviceCheck();
  showScreen(checkFirst ? "check" : "join");
  performance.mark("tiaojie:join_screen");
  loadMediaModules();
  // the WebSocket, ready for the join button (entering the room is the join itself)
  state.early = new Signalling({ token: state.token });
  state.early.preopen();
  preview.start().then(() => performance.mark("tiaojie:preview"));
  // sent here by another node after pressing join there: join at once
  if (arrival.name) join();
}

/** @type {Promise<import("./device-check.js").DeviceCheck>|null} */
let deviceCheckMade = null;

/** The device check screen's controller, made once (its module loads in the background). */
function deviceCheck() {
  deviceCheckMade ??= loadDeviceCheckModule().then(
    ({ DeviceCheck }) =>
      new DeviceCheck({ preview, token: state.token, onEnter: enterFromCheck, onBack: showJoin }),
  );
  return deviceCheckMade;
}

function showJoin() {
  renderJoin();
  showScreen("join");
}

/** The device check's "进入调解室": join at once with the invite's name (else ask for one). */
function enterFromCheck() {
  showJoin();
  join();
}

main().catch((e) => {
  console.error(e);
  showRefusal("unknown", String(e?.message || e));
});
