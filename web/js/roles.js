/**
 * Roles as shown to people: translated names and badges. A party invited as 申请人 or
 * 被申请人 (the invite's `side`) is shown by that side wherever they appear: the lobby,
 * the participant list, the tiles, confirmations and toasts.
 * @module roles
 */
import { t } from "./i18n.js";
import { h } from "./ui.js";

/** Display order: mediators first, then parties, experts, observers. */
export const ROLE_ORDER = { mediator: 0, party: 1, expert: 2, observer: 3, recorder: 4 };

/** A party's sides, in the agreement's order. */
export const SIDES = ["applicant", "respondent"];

/** Roles that publish media and may send raise_hand / set_muted (the permission matrix). */
export const SPEAKING_ROLES = new Set(["mediator", "party", "expert"]);

/** Translated role name. */
export function roleLabel(role) {
  const key = `role.${role}`;
  const s = t(key);
  return s === key ? role : s;
}

/**
 * What a person is in this mediation: a party's side (申请人 / 被申请人) when the invite
 * gave one, else their role.
 * @param {{role: string, side?: string|null}} p a participant or an invite
 */
export function personRole(p) {
  if (p?.role === "party" && SIDES.includes(p.side || "")) return t(`side.${p.side}`);
  return roleLabel(p?.role);
}

/** Role badge element (a party's side, if any: {@link personRole}). */
export function roleBadge(p) {
  const side = p?.role === "party" && SIDES.includes(p.side || "") ? `side-${p.side}` : "";
  return h("span.badge", { class: `role-${p?.role}${side ? ` ${side}` : ""}`, text: personRole(p) });
}
