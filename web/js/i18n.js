/**
 * Translations and the language switch.
 *
 * Chinese (zh-CN) is the default; English is the alternative. The choice comes from
 * `?lang=en|zh-CN` in the URL first, then localStorage, then zh-CN. Static text in the
 * HTML is marked with `data-i18n="key"` (text content) and `data-i18n-<attr>="key"`
 * for attributes (placeholder, title, aria-label, alt). Dynamic text is rendered with
 * {@link t}; listen for the `tiaojie:langchange` event on `document` to re-render it.
 *
 * @module i18n
 */

const STORAGE_KEY = "tiaojie.lang";
export const LANGS = ["zh-CN", "en"];
export const DEFAULT_LANG = "zh-CN";
const LANG_EVENT = "tiaojie:langchange";
const ATTRS = ["placeholder", "title", "aria-label", "alt"];

/** @type {Record<string, Record<string, string>>} */
const DICT = {
  "zh-CN": {
    "app.name": "调解",
    "app.tagline": "在线视频调解室",
    "lang.toggle": "English",
    "lang.toggle.label": "Switch to English",

    "landing.title": "在线视频调解室",
    "landing.lead": "请打开您收到的邀请链接进入调解室。",
    "landing.hint": "邀请链接由调解员通过短信、微信或邮件发送给您，形如 …/join#token=…。每个链接只供受邀本人使用，请勿转发。",
    "landing.help": "如果您没有收到链接，或者链接打不开，请联系负责您案件的调解员或调解中心。",

    "page.join.title": "加入调解 · 调解",
    "loading": "正在加载…",

    "join.heading": "进入调解室前的准备",
    "join.room": "调解室",
    "join.name": "您的称呼",
    "join.name.hint": "其他参与人将看到此名称（1–64 个字符）。",
    "join.name.empty": "请填写您的称呼。",
    "join.name.long": "称呼最多 64 个字符。",
    "join.role": "您的身份",
    "join.camera": "摄像头",
    "join.microphone": "麦克风",
    "join.mic.level": "麦克风音量",
    "join.preview.label": "摄像头预览",
    "join.preview.starting": "正在打开摄像头和麦克风…",
    "join.preview.off": "摄像头未开启",
    "join.media.denied": "您没有允许使用摄像头和麦克风。您仍可以加入，但其他人将无法看到或听到您。如需开启，请在浏览器地址栏中允许使用摄像头和麦克风，然后刷新本页。",
    "join.media.none": "未找到摄像头或麦克风。您仍可以加入，但其他人将无法看到或听到您。",
    "join.media.no_camera": "未找到摄像头，您将仅以语音参加。",
    "join.media.no_mic": "未找到麦克风，其他人将听不到您。",
    "join.media.unsupported": "此浏览器不支持摄像头和麦克风（可能因为页面不是通过 HTTPS 打开的）。您仍可以加入。",
    "join.media.busy": "摄像头或麦克风正被其他程序占用。请关闭其他程序后重试；您也可以直接加入。",
    "join.media.error": "无法打开摄像头或麦克风。您仍可以加入。",
    "join.media.retry": "重试",
    "join.device.default": "默认设备",
    "join.device.none": "无可用设备",
    "join.device.unnamed": "设备 {n}",
    "join.lobby_note": "进入后，请在等候室稍候，调解员准许后即可进入调解室。",
    "join.locked_note": "调解室已锁定，暂时无法加入新的参与人。",
    "join.button": "加入调解",
    "join.connecting": "正在连接…",
    "join.privacy": "调解过程可能会被录音录像，作为调解记录存档。",

    "role.mediator": "调解员",
    "role.party": "当事人",
    "role.expert": "专家",
    "role.observer": "旁听",
    "role.recorder": "录制",

    "lobby.heading": "等候室",
    "lobby.message": "请稍候，调解员将允许您进入。",
    "lobby.detail": "请保持本页面打开。调解员准许后，您将自动进入调解室。",
    "lobby.room": "调解室：{title}",
    "lobby.alert.one": "{name}（{role}）正在等候室等候。",
    "lobby.alert.many": "{n} 人正在等候室等候。",
    "lobby.alert.view": "查看等候室",

    "room.participants": "参与人",
    "room.you": "（我）",
    "room.lobby": "等候室",
    "room.lobby.empty": "等候室中没有人。",
    "room.hand.raise": "举手",
    "room.hand.lower": "放下手",
    "room.mic.mute": "关闭麦克风",
    "room.mic.unmute": "打开麦克风",
    "room.cam.off": "关闭摄像头",
    "room.cam.on": "打开摄像头",
    "room.leave": "离开",
    "room.admit": "准许",
    "room.deny": "拒绝",
    "room.mute": "静音",
    "room.ask_unmute": "请其发言",
    "room.remove": "移出",
    "room.lock": "锁定调解室",
    "room.unlock": "解除锁定",
    "room.end": "结束调解",
    "room.locked": "已锁定",
    "room.controls": "调解员操作",
    "room.controlbar": "我的操作",
    "room.status.hand": "举手",
    "room.status.muted": "已静音",
    "room.status.muted_by_mediator": "被调解员静音",
    "room.status.cam_off": "摄像头已关",
    "room.muted_by_mediator": "调解员已将您静音。调解员请您发言后，您才可以打开麦克风。",
    "room.unmute_requested": "调解员请您发言，您现在可以打开麦克风。",
    "room.unmute_now": "打开麦克风",
    "room.reconnecting": "网络连接中断，正在重新连接…",
    "room.sharing": "您正在共享屏幕",
    "room.sound_blocked": "浏览器暂停了其他参与人的声音。",
    "room.sound_play": "播放声音",
    "room.videos": "视频画面",
    "room.screen.start": "共享屏幕",
    "room.screen.stop": "停止共享",
    "room.devices": "设备",
    "room.devices.title": "切换摄像头和麦克风",
    "room.devices.done": "完成",
    "tile.screen": "{name} 的屏幕",
    "tile.screen.self": "您共享的屏幕",
    "quality.label": "连接质量：{level}",
    "quality.good": "良好",
    "quality.fair": "一般",
    "quality.poor": "较差",
    "quality.unknown": "未知",
    "quality.loss": "丢包 {value}%",
    "quality.rtt": "延迟 {value} 毫秒",
    "quality.fps": "{value} 帧/秒",
    "media.publish_failed": "无法发送您的声音和画面：{reason}",
    "media.screen_failed": "无法共享屏幕。",
    "media.device_failed": "无法打开所选设备，请换一个试试。",
    "invite.heading": "邀请新参与人",
    "invite.role": "身份",
    "invite.name": "称呼",
    "invite.name.placeholder": "例如：王某",
    "invite.name.empty": "请填写受邀人的称呼。",
    "invite.create": "生成邀请链接",
    "invite.copy": "复制",
    "invite.copied": "链接已复制，请发送给受邀人。",
    "invite.copy_failed": "无法自动复制，请选中链接后手动复制。",
    "invite.for": "发给 {name}（{role}）的邀请链接：",
    "invite.url": "邀请链接",
    "invite.hint": "链接 24 小时内有效，只供受邀人本人使用。",
    "room.confirm.end": "确定结束本次调解吗？所有人将被断开，所有邀请链接将失效。",
    "room.confirm.remove": "确定将 {name} 移出调解室吗？其邀请链接将失效。",
    "room.confirm.deny": "确定拒绝 {name} 进入吗？其邀请链接将失效。",
    "room.confirm.leave": "确定离开调解室吗？",
    "confirm.ok": "确定",
    "confirm.cancel": "取消",

    "removed.title": "您已被移出调解室",
    "removed.body": "调解员已将您移出本次调解，您的邀请链接已失效。如有疑问，请联系调解员。",
    "denied.title": "未获准进入",
    "denied.body": "调解员未准许您进入本次调解，您的邀请链接已失效。如有疑问，请联系调解员。",
    "ended.title": "调解已结束",
    "ended.body": "本次调解已经结束，邀请链接已失效。感谢您的参与。",
    "expired.title": "链接无法使用",
    "left.title": "您已离开调解室",
    "left.body": "您可以使用同一链接重新加入。",
    "left.rejoin": "重新加入",
    "error.title": "暂时无法加入",
    "error.retry": "重试",
    "closed.hint": "您可以关闭本页面。",

    "reason.token_missing": "链接不完整，缺少邀请凭证。请完整复制您收到的邀请链接后再打开。",
    "reason.token_invalid": "此邀请链接无效。请检查链接是否完整，或联系调解员重新发送。",
    "reason.token_expired": "此邀请链接已过期。请联系调解员重新发送邀请。",
    "reason.token_revoked": "此邀请链接已被撤销。如有疑问，请联系调解员。",
    "reason.token_wrong_room": "此邀请链接不属于该调解室。",
    "reason.room_not_found": "找不到对应的调解室，链接可能有误。",
    "reason.room_ended": "本次调解已经结束。",
    "reason.room_locked": "调解室已锁定，暂时不允许新的参与人加入。请联系调解员。",
    "reason.room_full": "调解室人数已满，请稍后再试或联系调解员。",
    "reason.lobby_full": "等候室人数已满，请稍后再试。",
    "reason.bad_request": "请求无效，请检查您的称呼后重试。",
    "reason.replaced": "您已在另一个窗口或设备上用同一链接加入，此页面已断开。",
    "reason.network": "无法连接到服务器，请检查网络后重试。",
    "reason.server": "服务器出现问题，请稍后重试。",
    "reason.forbidden": "您没有权限进行此操作。",
    "reason.not_found": "该参与人已不在调解室中。",
    "reason.not_in_lobby": "该参与人已不在等候室中。",
    "reason.not_muted": "该参与人未被静音。",
    "reason.not_joined": "您尚未进入调解室。",
    "reason.muted_by_mediator": "调解员已将您静音，需等调解员请您发言。",
    "reason.cannot_remove_self": "不能移出自己。",
    "reason.payload_too_large": "内容过长。",
    "reason.timeout": "服务器没有响应，请重试。",
    "reason.webrtc": "浏览器的音视频连接出错，请刷新页面重试。",
    "reason.internal_error": "服务器出现问题，请稍后重试。",
    "reason.unknown": "发生未知错误（{code}）。",
  },

  en: {
    "app.name": "Tiaojie",
    "app.tagline": "Online video mediation room",
    "lang.toggle": "中文",
    "lang.toggle.label": "切换到中文",

    "landing.title": "Online video mediation room",
    "landing.lead": "Please open the invite link you received to enter the mediation room.",
    "landing.hint": "The mediator sends you the invite link by SMS, WeChat or e-mail; it looks like …/join#token=…. Each link is for the invited person only; please do not forward it.",
    "landing.help": "If you did not receive a link, or it does not open, contact the mediator or the mediation centre handling your case.",

    "page.join.title": "Join the mediation · Tiaojie",
    "loading": "Loading…",

    "join.heading": "Get ready to join",
    "join.room": "Mediation room",
    "join.name": "Your name",
    "join.name.hint": "Other participants will see this name (1–64 characters).",
    "join.name.empty": "Please enter your name.",
    "join.name.long": "The name can be at most 64 characters.",
    "join.role": "Your role",
    "join.camera": "Camera",
    "join.microphone": "Microphone",
    "join.mic.level": "Microphone level",
    "join.preview.label": "Camera preview",
    "join.preview.starting": "Starting camera and microphone…",
    "join.preview.off": "Camera is off",
    "join.media.denied": "You did not allow the camera and microphone. You can still join, but others will not see or hear you. To turn them on, allow camera and microphone in the browser's address bar and reload this page.",
    "join.media.none": "No camera or microphone was found. You can still join, but others will not see or hear you.",
    "join.media.no_camera": "No camera was found; you will take part by voice only.",
    "join.media.no_mic": "No microphone was found; others will not hear you.",
    "join.media.unsupported": "This browser cannot use a camera or microphone here (perhaps the page was not opened over HTTPS). You can still join.",
    "join.media.busy": "The camera or microphone is in use by another program. Close it and retry, or join anyway.",
    "join.media.error": "The camera or microphone could not be started. You can still join.",
    "join.media.retry": "Retry",
    "join.device.default": "Default device",
    "join.device.none": "No device available",
    "join.device.unnamed": "Device {n}",
    "join.lobby_note": "After joining, please wait in the lobby; you will enter when the mediator admits you.",
    "join.locked_note": "The room is locked; no new participants can join at the moment.",
    "join.button": "Join mediation",
    "join.connecting": "Connecting…",
    "join.privacy": "The mediation session may be recorded (audio and video) as part of the mediation record.",

    "role.mediator": "Mediator",
    "role.party": "Party",
    "role.expert": "Expert",
    "role.observer": "Observer",
    "role.recorder": "Recorder",

    "lobby.heading": "Lobby",
    "lobby.message": "Please wait, the mediator will let you in.",
    "lobby.detail": "Keep this page open. You will enter the room automatically once the mediator admits you.",
    "lobby.room": "Room: {title}",
    "lobby.alert.one": "{name} ({role}) is waiting in the lobby.",
    "lobby.alert.many": "{n} people are waiting in the lobby.",
    "lobby.alert.view": "View lobby",

    "room.participants": "Participants",
    "room.you": " (you)",
    "room.lobby": "Lobby",
    "room.lobby.empty": "Nobody is waiting.",
    "room.hand.raise": "Raise hand",
    "room.hand.lower": "Lower hand",
    "room.mic.mute": "Mute",
    "room.mic.unmute": "Unmute",
    "room.cam.off": "Stop video",
    "room.cam.on": "Start video",
    "room.leave": "Leave",
    "room.admit": "Admit",
    "room.deny": "Deny",
    "room.mute": "Mute",
    "room.ask_unmute": "Ask to speak",
    "room.remove": "Remove",
    "room.lock": "Lock room",
    "room.unlock": "Unlock room",
    "room.end": "End mediation",
    "room.locked": "Locked",
    "room.controls": "Mediator controls",
    "room.controlbar": "My controls",
    "room.status.hand": "Hand raised",
    "room.status.muted": "Muted",
    "room.status.muted_by_mediator": "Muted by mediator",
    "room.status.cam_off": "Camera off",
    "room.muted_by_mediator": "The mediator has muted you. You can unmute once the mediator asks you to speak.",
    "room.unmute_requested": "The mediator asks you to speak; you may unmute now.",
    "room.unmute_now": "Unmute",
    "room.reconnecting": "Connection lost, reconnecting…",
    "room.sharing": "You are sharing your screen",
    "room.sound_blocked": "The browser paused the other participants' sound.",
    "room.sound_play": "Play sound",
    "room.videos": "Videos",
    "room.screen.start": "Share screen",
    "room.screen.stop": "Stop sharing",
    "room.devices": "Devices",
    "room.devices.title": "Switch camera and microphone",
    "room.devices.done": "Done",
    "tile.screen": "{name}'s screen",
    "tile.screen.self": "Your shared screen",
    "quality.label": "Connection quality: {level}",
    "quality.good": "good",
    "quality.fair": "fair",
    "quality.poor": "poor",
    "quality.unknown": "unknown",
    "quality.loss": "loss {value}%",
    "quality.rtt": "round trip {value} ms",
    "quality.fps": "{value} fps",
    "media.publish_failed": "Your audio and video could not be sent: {reason}",
    "media.screen_failed": "The screen could not be shared.",
    "media.device_failed": "The selected device could not be opened; try another one.",
    "invite.heading": "Invite someone",
    "invite.role": "Role",
    "invite.name": "Name",
    "invite.name.placeholder": "e.g. Wang Fang",
    "invite.name.empty": "Please enter the name of the person you invite.",
    "invite.create": "Create invite link",
    "invite.copy": "Copy",
    "invite.copied": "Link copied; send it to the person you invite.",
    "invite.copy_failed": "Could not copy automatically; select the link and copy it.",
    "invite.for": "Invite link for {name} ({role}):",
    "invite.url": "Invite link",
    "invite.hint": "The link works for 24 hours and only for the person invited.",
    "room.confirm.end": "End this mediation? Everyone will be disconnected and all invite links will stop working.",
    "room.confirm.remove": "Remove {name} from the room? Their invite link will stop working.",
    "room.confirm.deny": "Deny {name} entry? Their invite link will stop working.",
    "room.confirm.leave": "Leave the mediation room?",
    "confirm.ok": "OK",
    "confirm.cancel": "Cancel",

    "removed.title": "You were removed from the room",
    "removed.body": "The mediator removed you from this mediation and your invite link no longer works. If you have questions, contact the mediator.",
    "denied.title": "Entry not granted",
    "denied.body": "The mediator did not admit you to this mediation and your invite link no longer works. If you have questions, contact the mediator.",
    "ended.title": "The mediation has ended",
    "ended.body": "This mediation session is over and the invite links no longer work. Thank you for taking part.",
    "expired.title": "This link cannot be used",
    "left.title": "You left the room",
    "left.body": "You can rejoin with the same link.",
    "left.rejoin": "Rejoin",
    "error.title": "Cannot join right now",
    "error.retry": "Try again",
    "closed.hint": "You can close this page.",

    "reason.token_missing": "The link is incomplete: the invite token is missing. Copy the whole invite link you received and open it again.",
    "reason.token_invalid": "This invite link is not valid. Check that the link is complete, or ask the mediator to send it again.",
    "reason.token_expired": "This invite link has expired. Please ask the mediator for a new invite.",
    "reason.token_revoked": "This invite link has been revoked. If you have questions, contact the mediator.",
    "reason.token_wrong_room": "This invite link does not belong to this room.",
    "reason.room_not_found": "The mediation room could not be found; the link may be wrong.",
    "reason.room_ended": "This mediation session has ended.",
    "reason.room_locked": "The room is locked and does not accept new participants right now. Please contact the mediator.",
    "reason.room_full": "The room is full. Please try again later or contact the mediator.",
    "reason.lobby_full": "The lobby is full. Please try again later.",
    "reason.bad_request": "The request was not valid. Check your name and try again.",
    "reason.replaced": "You joined with the same link in another window or device, so this page was disconnected.",
    "reason.network": "Cannot reach the server. Check your network and try again.",
    "reason.server": "The server had a problem. Please try again later.",
    "reason.forbidden": "You are not allowed to do this.",
    "reason.not_found": "That participant is no longer in the room.",
    "reason.not_in_lobby": "That participant is no longer in the lobby.",
    "reason.not_muted": "That participant is not muted.",
    "reason.not_joined": "You have not entered the room yet.",
    "reason.muted_by_mediator": "The mediator has muted you; wait until you are asked to speak.",
    "reason.cannot_remove_self": "You cannot remove yourself.",
    "reason.payload_too_large": "The content is too long.",
    "reason.timeout": "The server did not answer. Please try again.",
    "reason.webrtc": "The browser's media connection failed; reload the page and try again.",
    "reason.internal_error": "The server had a problem. Please try again later.",
    "reason.unknown": "An unknown error occurred ({code}).",
  },
};

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
 * Switch language, remember it, re-translate the page and fire `tiaojie:langchange`.
 * @param {string} lang
 */
export function setLang(lang) {
  const l = normalise(lang) || DEFAULT_LANG;
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
