/**
 * Small DOM helpers shared by the pages: screens, element building, toasts, confirm,
 * device selects, list replacement that keeps focus.
 * @module ui
 */
import { t } from "./i18n.js";

/** Every screen of the join page; each is `<section id="screen-NAME">`. */
export const SCREENS = [
  "loading",
  "join",
  "check",
  "lobby",
  "room",
  "removed",
  "denied",
  "ended",
  "expired",
  "left",
  "error",
];

/**
 * Show one screen, hide the others, and record it in `document.body.dataset.screen`.
 * Focus moves to the screen's heading so screen readers announce the change.
 * @param {string} name one of {@link SCREENS}
 */
export function showScreen(name) {
  for (const s of SCREENS) {
    const el = document.getElementById(`screen-${s}`);
    if (el) el.hidden = s !== name;
  }
  const changed = document.body.dataset.screen !== name;
  document.body.dataset.screen = name;
  if (changed) {
    const heading = document.querySelector(`#screen-${name} h1`);
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
}

/** The name of the screen on show. */
export function currentScreen() {
  return document.body.dataset.screen || "";
}

/**
 * Build an element.
 * @param {string} tag e.g. "li" or "button.btn.small"
 * @param {Record<string, any>} [attrs] attributes; `text` sets textContent,
 *   `dataset` an object of data-*, `on` an object of listeners, `html` trusted markup
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k === "html") el.innerHTML = v; // constant markup only (icons), never user data
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "class") el.className += (el.className ? " " : "") + v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
  return el;
}

/**
 * Set an element's text from a translation key, keeping it translated on language change.
 * With no key (a server message we have no translation for), set the text as is.
 * @param {HTMLElement} el
 * @param {string|null} key
 * @param {string} [fallback]
 */
export function setI18nText(el, key, fallback = "") {
  if (key) {
    el.dataset.i18n = key;
    el.textContent = t(key);
  } else {
    delete el.dataset.i18n;
    el.textContent = fallback;
  }
}

let toastTimer = 0;

/**
 * Show a short message at the bottom of the screen.
 * @param {string} message
 * @param {"info"|"error"} [kind]
 */
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 5000);
}

/**
 * Ask for confirmation in the page's `#confirm-dialog` (falls back to window.confirm).
 * @param {string} message
 * @param {{danger?: boolean}} [opts]
 * @returns {Promise<boolean>}
 */
export function confirmAction(message, { danger = false } = {}) {
  const dialog = /** @type {HTMLDialogElement|null} */ (document.getElementById("confirm-dialog"));
  if (!dialog || typeof dialog.showModal !== "function") {
    return Promise.resolve(window.confirm(message));
  }
  dialog.querySelector("[data-confirm-message]").textContent = message;
  dialog.querySelector("[data-confirm-ok]").classList.toggle("danger", danger);
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "ok"),
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** The first character of a name, for avatars. */
export function initial(name) {
  const first = [...(name || "?").trim()][0] || "?";
  return first.toUpperCase();
}

/**
 * Count characters as the server does (Unicode code points, not UTF-16 units).
 * @param {string} s
 */
export function charCount(s) {
  return [...s].length;
}

/**
 * Fill a device `<select>` from a device list and select the current device.
 * @param {HTMLSelectElement} select
 * @param {{deviceId: string, label: string}[]} devices
 * @param {string} selectedId
 */
export function fillDeviceSelect(select, devices, selectedId) {
  const options = [];
  if (devices.length === 0) {
    options.push(new Option(t("join.device.none"), ""));
  } else {
    devices.forEach((d, i) => {
      // before permission Chrome gives empty ids and labels
      const label =
        d.label || (d.deviceId ? t("join.device.unnamed", { n: i + 1 }) : t("join.device.default"));
      options.push(new Option(label, d.deviceId));
    });
  }
  select.replaceChildren(...options);
  select.value =
    selectedId && devices.some((d) => d.deviceId === selectedId) ? selectedId : options[0].value;
  select.disabled = devices.length <= 1; // nothing to choose
}

/**
 * Replace a participant list's items, keeping keyboard focus on the same button of the
 * same participant when it is re-created.
 * @param {HTMLElement} list
 * @param {HTMLElement[]} items
 */
export function replaceItems(list, items) {
  const active = /** @type {HTMLElement|null} */ (document.activeElement);
  const li = active && list.contains(active) ? active.closest("li[data-participant-id]") : null;
  const id = li?.dataset.participantId;
  const action = active?.dataset?.action;
  list.replaceChildren(...items);
  if (id && action) {
    const again = list.querySelector(
      `li[data-participant-id="${CSS.escape(id)}"] [data-action="${CSS.escape(action)}"]`,
    );
    if (again && !again.disabled) again.focus();
  }
}
