/**
 * The public report page (`/report`): a resident reports a dispute without an account and
 * gets a receipt with the case number, the case's QR code and its progress link.
 *
 * Photos are made smaller in the browser before they are sent (at most MAX_SIDE pixels a
 * side, as JPEG), so a phone on a slow network sends a few hundred kilobytes, not the
 * camera's megabytes; PDFs go as they are. The receipt stays in this tab's
 * sessionStorage, so a reload shows it again until "report another" is pressed.
 *
 * The body's `data-screen` is "report" or "receipt"; `data-state` is "loading", "ready",
 * "sending" or "failed" (the options could not be loaded).
 * @module report
 */
import { errorText, getLang, initI18n, onLangChange, t } from "./i18n.js";
import { fetchCaseOptions, postReport, qrUrl } from "./cases-api.js";

const MAX_FILES = 4;
const MAX_BYTES = 5 * 1024 * 1024;
const MAX_SIDE = 1600;
const RECEIPT_KEY = "tiaojie.report.receipt";
const PHONE = /^\+?[0-9]{5,20}$/;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @type {import("./cases-api.js").CaseOptions | null} */
let options = null;
/** @type {{blob: Blob, name: string, preview: string}[]} */
let files = [];

function setState(state) {
  document.body.dataset.state = state;
}

function option(value, text) {
  const el = document.createElement("option");
  el.value = value;
  el.textContent = text;
  return el;
}

function renderOptions() {
  if (!options) return;
  const type = /** @type {HTMLSelectElement} */ ($("report-type"));
  const community = /** @type {HTMLSelectElement} */ ($("report-community"));
  const keep = [type.value, community.value];
  const en = getLang() === "en";
  type.replaceChildren(
    option("", t("report.type.choose")),
    ...options.dispute_types.map((d) => option(d.code, en && d.name_en ? d.name_en : d.name)),
  );
  community.replaceChildren(option("", t("report.community.choose")));
  for (const district of options.regions) {
    for (const street of district.children || []) {
      const group = document.createElement("optgroup");
      group.label = `${district.name} ${street.name}`;
      for (const place of street.children || []) group.append(option(place.code, place.name));
      if (group.children.length) community.append(group);
    }
  }
  [type.value, community.value] = keep;
}

/** Show or clear the error under a field. */
function fieldError(id, key) {
  const el = $(`${id}-error`);
  el.textContent = key ? t(key) : "";
  el.hidden = !key;
  const input = document.getElementById(id);
  if (input) input.setAttribute("aria-invalid", key ? "true" : "false");
  return !key;
}

function value(id) {
  return /** @type {HTMLInputElement} */ ($(id)).value.trim();
}

function validate() {
  const phone = value("report-phone").replace(/[\s-]/g, "");
  const checks = [
    fieldError("report-name", value("report-name") ? "" : "report.name.empty"),
    fieldError("report-phone", PHONE.test(phone) ? "" : "report.phone.invalid"),
    fieldError("report-type", value("report-type") ? "" : "report.type.empty"),
    fieldError("report-community", value("report-community") ? "" : "report.community.empty"),
    fieldError("report-description", value("report-description") ? "" : "report.description.empty"),
  ];
  const first = checks.indexOf(false);
  if (first >= 0) {
    const ids = ["report-name", "report-phone", "report-type", "report-community", "report-description"];
    $(ids[first]).focus();
  }
  return first < 0;
}

/** A canvas with `source` drawn at most `side` pixels a side. */
function drawn(source, side) {
  const scale = Math.min(1, side / Math.max(source.width, source.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(source.width * scale));
  canvas.height = Math.max(1, Math.round(source.height * scale));
  canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
  return { canvas, scaled: scale < 1 };
}

/**
 * A chosen file as it will be sent: a photo made smaller (as JPEG) when it is large, a
 * PDF as it is; with a small preview for the list.
 * @param {File} file
 */
async function prepare(file) {
  if (file.type === "application/pdf") {
    if (file.size > MAX_BYTES) throw new Error("report.photos.too_large");
    return { blob: file, name: file.name, preview: "" };
  }
  if (!/^image\/(jpeg|png|webp)$/.test(file.type)) throw new Error("report.photos.type");
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error("report.photos.unreadable");
  }
  const { canvas, scaled } = drawn(bitmap, MAX_SIDE);
  let blob = file;
  let name = file.name;
  if (scaled || file.size > 1.5 * 1024 * 1024) {
    blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    if (!blob) throw new Error("report.photos.unreadable");
    name = `${file.name.replace(/\.[^.]*$/, "") || "photo"}.jpg`;
  }
  if (blob.size > MAX_BYTES) throw new Error("report.photos.too_large");
  const preview = drawn(bitmap, 96).canvas.toDataURL("image/jpeg", 0.7);
  bitmap.close();
  return { blob, name, preview };
}

function renderFiles() {
  const list = $("report-photo-list");
  list.replaceChildren(
    ...files.map((file, index) => {
      const item = document.createElement("li");
      item.className = "photo-item";
      if (file.preview) {
        const img = document.createElement("img");
        img.src = file.preview;
        img.alt = "";
        item.append(img);
      }
      const name = document.createElement("span");
      name.className = "photo-name";
      name.textContent = file.name;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "btn small";
      remove.textContent = t("report.photos.remove");
      remove.addEventListener("click", () => {
        files.splice(index, 1);
        renderFiles();
      });
      item.append(name, remove);
      return item;
    }),
  );
  $("report-photos").toggleAttribute("disabled", files.length >= MAX_FILES);
}

async function addFiles(event) {
  const input = /** @type {HTMLInputElement} */ (event.target);
  const chosen = Array.from(input.files || []);
  input.value = "";
  let problem = "";
  for (const file of chosen) {
    if (files.length >= MAX_FILES) {
      problem = "report.photos.too_many";
      break;
    }
    try {
      files.push(await prepare(file));
    } catch (e) {
      problem = e instanceof Error && e.message.startsWith("report.") ? e.message : "report.photos.unreadable";
    }
  }
  fieldError("report-photos", problem);
  renderFiles();
}

function showReceipt(receipt) {
  $("receipt-number").textContent = receipt.case_number;
  /** @type {HTMLImageElement} */ ($("receipt-qr")).src = qrUrl(receipt.code);
  const link = /** @type {HTMLAnchorElement} */ ($("receipt-link"));
  link.href = `/c/${encodeURIComponent(receipt.code)}`;
  link.textContent = receipt.progress_url;
  $("screen-report").hidden = true;
  $("screen-receipt").hidden = false;
  document.body.dataset.screen = "receipt";
  window.scrollTo(0, 0);
}

function keepReceipt(receipt) {
  try {
    sessionStorage.setItem(RECEIPT_KEY, JSON.stringify(receipt));
  } catch {
    /* storage refused: the receipt shows until the page is left */
  }
}

function keptReceipt() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(RECEIPT_KEY) || "null");
    return kept && typeof kept.code === "string" ? kept : null;
  } catch {
    return null;
  }
}

async function submit(event) {
  event.preventDefault();
  const error = $("report-error");
  error.hidden = true;
  if (document.body.dataset.state === "sending" || !validate()) return;
  const report = {
    name: value("report-name"),
    phone: value("report-phone").replace(/[\s-]/g, ""),
    dispute_type: value("report-type"),
    community: value("report-community"),
    description: value("report-description"),
  };
  const respondent = value("report-respondent");
  if (respondent) report.respondent_name = respondent;
  setState("sending");
  $("report-submit").setAttribute("disabled", "");
  try {
    const receipt = await postReport(report, files);
    keepReceipt(receipt);
    showReceipt(receipt);
  } catch (e) {
    error.textContent = errorText(e.code, e.message, ["report.error", "reason"]);
    error.hidden = false;
  } finally {
    setState("ready");
    $("report-submit").removeAttribute("disabled");
  }
}

function startOver() {
  try {
    sessionStorage.removeItem(RECEIPT_KEY);
  } catch {
    /* ignore */
  }
  /** @type {HTMLFormElement} */ ($("report-form")).reset();
  files = [];
  renderFiles();
  $("screen-receipt").hidden = true;
  $("screen-report").hidden = false;
  document.body.dataset.screen = "report";
}

async function main() {
  initI18n();
  onLangChange(() => {
    renderOptions();
    renderFiles();
  });
  $("report-form").addEventListener("submit", submit);
  $("report-photos").addEventListener("change", addFiles);
  $("receipt-new").addEventListener("click", startOver);
  const kept = keptReceipt();
  if (kept) showReceipt(kept);
  try {
    options = await fetchCaseOptions();
  } catch (e) {
    const error = $("report-error");
    error.textContent = errorText(e.code, e.message, ["report.error", "reason"]);
    error.hidden = false;
    setState("failed");
    return;
  }
  renderOptions();
  setState("ready");
}

main();
