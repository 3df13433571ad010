/**
 * Translations and the language switch.
 *
 * The texts are in one file per language (i18n/zh-CN.js, i18n/en.js, with the same keys);
 * this module looks them up and switches between them.
 *
 * Chinese (zh-CN) is the default; English is the alternative. The choice comes from
 * `?lang=en|zh-CN` in the URL first, then localStorage, then zh-CN. Static text in the
 * HTML is marked with `data-i18n="key"` (text content) and `data-i18n-<attr>="key"`
 * for attributes (placeholder, title, aria-label, alt). Dynamic text is rendered with
 * {@link t}; listen for the `tiaojie:langchange` event on `document` to re-render it.
 *
 * @module i18n
 */
import zhCN from "./i18n/zh-CN.js";

const STORAGE_KEY = "tiaojie.lang";
export const LANGS = ["zh-CN", "en"];
export const DEFAULT_LANG = "zh-CN";
const LANG_EVENT = "tiaojie:langchange";
const ATTRS = ["placeholder", "title", "aria-label", "alt"];

/**
 * The languages loaded so far, one file per language under i18n/: Chinese always (the
 * default and the fallback), another only when it is chosen (each file is ~60 kB that a
 * page would otherwise fetch and parse before it can show anything).
 * @type {Record<string, Record<string, string>>}
 */
const DICT = { "zh-CN": zhCN };
const LOAD = { en: () => import("./i18n/en.js") };

/** Load `lang`'s texts unless they are here. */
async function load(lang) {
  if (!DICT[lang]) DICT[lang] = (await LOAD[lang]()).default;
}

/** @returns {string} a supported language code, or "" */
function normalise(lang) {
  if (!lang) return "";
  const l = String(lang).toLowerCase();
  if (l.startsWith("zh")) return "zh-CN";
  if (l.startsWith("en")) return "en";
  return "";
}

function readStored() {
  try {
    return localStorage.getItem(STORAGE_KEY) || "";
  } catch {
    return ""; // storage disabled (private mode, file://)
  }
}

function store(lang) {
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    /* ignore */
  }
}

const fromUrl = normalise(new URLSearchParams(location.search).get("lang"));
if (fromUrl) store(fromUrl); // a ?lang= link also sets the remembered choice
let current = fromUrl || normalise(readStored()) || DEFAULT_LANG;
// a page in another language waits for its texts (no Chinese shown first, then replaced)
if (current !== DEFAULT_LANG) await load(current);

/** The current language code ("zh-CN" or "en"). */
export function getLang() {
  return current;
}

/**
 * Translate a key, substituting `{name}` placeholders from `vars`.
 * Falls back to Chinese, then to the key itself.
 * @param {string} key
 * @param {Record<string, string|number>} [vars]
 * @returns {string}
 */
export function t(key, vars) {
  let s = DICT[current][key] ?? DICT[DEFAULT_LANG][key] ?? key;
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  }
  return s;
}

/** Whether a translation exists for `key`. */
export function has(key) {
  return key in DICT[current] || key in DICT[DEFAULT_LANG];
}

/**
 * The text for an error code (a refused request, an API error): the first of
 * `<prefix>.<code>` that is translated, else the server's message, else "unknown error".
 * @param {string} code
 * @param {string} [message] the server's text
 * @param {string[]} [prefixes] where to look, in order
 * @returns {string}
 */
export function errorText(code, message = "", prefixes = ["reason"]) {
  for (const prefix of prefixes) {
    const key = `${prefix}.${code}`;
    if (has(key)) return t(key, { code });
  }
  return message || t("reason.unknown", { code });
}

/**
 * Translate every `data-i18n` / `data-i18n-<attr>` element under `root`.
 * @param {ParentNode} [root]
 */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const attr of ATTRS) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
    }
  }
  document.documentElement.lang = current;
  const toggle = document.getElementById("lang-toggle");
  if (toggle) toggle.lang = current === "en" ? "zh-CN" : "en"; // it names the other language
  const titleKey = document.documentElement.dataset.i18nTitle;
  if (titleKey) document.title = t(titleKey);
}

/**
 * Switch language (once its texts are loaded), remember it, re-translate the page and
 * fire `tiaojie:langchange`.
 * @param {string} lang
 */
export async function setLang(lang) {
  const l = normalise(lang) || DEFAULT_LANG;
  await load(l);
  current = l;
  store(l);
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) {
    // keep ?lang= in step so a reload shows the same language (the #fragment is kept)
    url.searchParams.set("lang", l);
    history.replaceState(history.state, "", url);
  }
  applyI18n();
  document.dispatchEvent(new CustomEvent(LANG_EVENT, { detail: { lang: l } }));
}

/**
 * Call `fn` whenever the language changes.
 * @param {(lang: string) => void} fn
 */
export function onLangChange(fn) {
  document.addEventListener(LANG_EVENT, (e) => fn(e.detail.lang));
}

/**
 * Translate the page now and wire the `#lang-toggle` button (Chinese <-> English).
 */
export function initI18n() {
  applyI18n();
  const btn = document.getElementById("lang-toggle");
  if (btn) {
    btn.addEventListener("click", () => setLang(current === "en" ? "zh-CN" : "en"));
  }
}
