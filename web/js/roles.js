/**
 * Roles as shown to people: translated names and badges.
 * @module roles
 */
import { t } from "./i18n.js";
import { h } from "./ui.js";

/** Display order: mediators first, then parties, experts, observers. */
export const ROLE_ORDER = { mediator: 0, party: 1, expert: 2, observer: 3, recorder: 4 };

/** Roles that publish media and may send raise_hand / set_muted (the permission matrix). */
export const SPEAKING_ROLES = new Set(["mediator", "party", "expert"]);

/** Translated role name. */
export function roleLabel(role) {
  const key = `role.${role}`;
  const s = t(key);
  return s === key ? role : s;
}

/** Role badge element. */
export function roleBadge(role) {
  return h("span.badge", { class: `role-${role}`, text: roleLabel(role) });
}
