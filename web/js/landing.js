/**
 * The landing page (`/`): nothing to do but translate and offer the language switch.
 * Someone who lands here with an invite fragment (`/#token=...`) is sent to /join.
 * @module landing
 */
import { initI18n } from "./i18n.js";

if (/(^#|&)token=/.test(location.hash)) {
  location.replace(`/join${location.search}${location.hash}`);
} else {
  initI18n();
}
