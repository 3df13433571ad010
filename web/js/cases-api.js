/**
 * The public REST calls of the case pages (docs/CASES.md): no token, errors as
 * {@link ApiError} like every other call of the client.
 * @module cases-api
 */
import { ApiError } from "./api.js";

/**
 * Call a public endpoint and read its JSON answer.
 * @param {string} method
 * @param {string} path
 * @param {BodyInit} [body] a FormData is sent as multipart/form-data
 * @returns {Promise<any>}
 * @throws {ApiError}
 */
async function publicJson(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      body,
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError("network", String(e), 0);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (res.ok && data !== null) return data;
  if (data && typeof data.error === "string") {
    throw new ApiError(data.error, data.message || "", res.status);
  }
  throw new ApiError(res.status >= 500 ? "server" : "unknown", res.statusText, res.status);
}

/**
 * @typedef {object} CaseOptions
 * @property {{code: string, name: string, name_en?: string}[]} dispute_types
 * @property {{code: string, name: string, children?: object[]}[]} regions
 */

/** The dispute types and regions a report may name. @returns {Promise<CaseOptions>} */
export function fetchCaseOptions() {
  return publicJson("GET", "/api/case-options");
}

/**
 * @typedef {object} CaseReceipt
 * @property {string} case_id
 * @property {string} case_number
 * @property {string} code the case's public code (its QR code)
 * @property {string} progress_url
 */

/**
 * Send a resident's report: the JSON as the part `case`, each file as a part `attachment`.
 * @param {object} report
 * @param {{blob: Blob, name: string}[]} files
 * @returns {Promise<CaseReceipt>}
 */
export function postReport(report, files) {
  const form = new FormData();
  form.append("case", JSON.stringify(report));
  for (const file of files) form.append("attachment", file.blob, file.name);
  return publicJson("POST", "/api/cases", form);
}

/** The URL of a case's QR code (SVG). @param {string} code */
export function qrUrl(code) {
  return `/api/progress/${encodeURIComponent(code)}/qr.svg`;
}
