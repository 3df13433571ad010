/**
 * The chat panel: the room's chat and private messages (私信), a "send to" choice, and
 * the number of messages not yet seen (on the 聊天 tab for mediators, on the 聊天 button
 * in the room's header for everyone: it stays on screen on phones, and opens the chat).
 *
 * Messages are shown with `textContent` only (never as HTML), line breaks kept by CSS.
 * The history comes with `chat_history` on entering the room (what was delivered to
 * this person, docs/PROTOCOL.md "Chat"); each new message comes as `chat`.
 *
 * Whom one may write to privately follows the server's rule: the mediator anyone in the
 * room; everyone else the mediator only.
 *
 * @module chat-panel
 */
import { errorText, onLangChange, t } from "./i18n.js";
import { personRole } from "./roles.js";
import { h } from "./ui.js";

const $ = (id) => document.getElementById(id);

/**
 * @typedef {object} ChatMessage
 * @property {string} id
 * @property {string} from participant id of the sender
 * @property {string} name the sender's name when they wrote it
 * @property {string|null} to the recipient of a private message
 * @property {string|null} caucus_id the caucus it was said in (null: the main room)
 * @property {string} text
 * @property {number} at Unix seconds
 */

export class ChatPanel {
  /**
   * @param {object} opts
   * @param {import("./signalling.js").Signalling} opts.signalling
   * @param {import("./room-state.js").RoomState} opts.room
   * @param {import("./console-tabs.js").ConsoleTabs} opts.tabs
   */
  constructor({ signalling, room, tabs }) {
    this.sig = signalling;
    this.room = room;
    this.tabs = tabs;
    /** @type {ChatMessage[]} */
    this.messages = [];
    this.unread = 0;
    this.visible = false;
    this.sending = false;
    this.el = {
      panel: $("panel-chat"),
      card: $("chat-card"),
      list: $("chat-list"),
      empty: $("chat-empty"),
      form: $("chat-form"),
      to: /** @type {HTMLSelectElement} */ ($("chat-to")),
      text: /** @type {HTMLTextAreaElement} */ ($("chat-text")),
      error: $("chat-error"),
      send: $("chat-send"),
      unread: $("chat-unread"),
      tabUnread: $("tab-chat-unread"),
      button: $("chat-button"),
      buttonUnread: $("chat-button-unread"),
    };

    signalling.on("chat_history", ({ messages }) => {
      this.messages = Array.isArray(messages) ? messages : [];
      this.unread = 0;
      this.renderList();
    });
    signalling.on("chat", (message) => this.add(message));
    room.watch(["self", "participants"], () => this.renderRecipients());
    tabs.addEventListener("change", () => this.checkSeen());

    this.el.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    this.el.text.addEventListener("keydown", (e) => {
      // Enter sends; Shift+Enter is a new line (phones send with the button)
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    this.el.button.addEventListener("click", () => this.open());
    if ("IntersectionObserver" in window) {
      new IntersectionObserver((entries) => {
        this.visible = entries.some((x) => x.isIntersecting);
        this.checkSeen();
      }).observe(this.el.list);
    }
    onLangChange(() => {
      this.renderList();
      this.renderRecipients();
    });
    this.renderRecipients();
    this.renderUnread();
  }

  /** Show the chat: the 聊天 tab for mediators, the panel scrolled into view for others. */
  open() {
    if (this.tabs.enabled) this.tabs.show("chat");
    this.el.card.scrollIntoView({ block: "nearest" });
    this.el.text.focus({ preventScroll: true });
    this.markSeen();
  }

  /** @param {ChatMessage} message */
  add(message) {
    if (!message || typeof message.id !== "string") return;
    if (this.messages.some((m) => m.id === message.id)) return;
    this.messages.push(message);
    this.el.list.append(this.item(message));
    this.el.empty.hidden = true;
    this.el.list.lastElementChild?.scrollIntoView({ block: "nearest" });
    if (message.from !== this.room.self?.id && !this.seen()) this.unread += 1;
    this.renderUnread();
  }

  /** Whether the messages can be seen now (the panel on screen, its tab chosen). */
  seen() {
    if (document.visibilityState === "hidden") return false;
    if (this.tabs.enabled && this.tabs.active !== "chat") return false;
    return this.visible || !("IntersectionObserver" in window);
  }

  checkSeen() {
    if (this.seen()) this.markSeen();
  }

  markSeen() {
    this.unread = 0;
    this.renderUnread();
  }

  renderUnread() {
    const n = this.unread;
    for (const el of [this.el.unread, this.el.tabUnread, this.el.buttonUnread]) {
      el.hidden = n === 0;
      el.textContent = String(n);
    }
    this.el.button.setAttribute(
      "aria-label",
      n ? t("chat.button.unread", { n }) : t("chat.button"),
    );
  }

  renderList() {
    this.el.list.replaceChildren(...this.messages.map((m) => this.item(m)));
    this.el.empty.hidden = this.messages.length > 0;
    this.renderUnread();
  }

  /** @param {string} id @param {string} fallback */
  nameOf(id, fallback) {
    const p = this.room.participants.get(id);
    return p ? p.name : fallback;
  }

  /**
   * One message: who, when, 私信 and to/from whom when private, then the text.
   * @param {ChatMessage} m
   */
  item(m) {
    const selfId = this.room.self?.id;
    const mine = m.from === selfId;
    const sender = this.room.participants.get(m.from);
    const who = h(
      "span.chat-from",
      {},
      h("span.chat-name", { text: mine ? t("chat.you") : m.name || this.nameOf(m.from, "") }),
      sender && !mine ? h("span.chat-role", { text: personRole(sender) }) : null,
    );
    const when = h("time.chat-time", {
      datetime: new Date(m.at * 1000).toISOString(),
      text: new Date(m.at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    });
    let privateMark = null;
    if (m.to) {
      const other = mine ? this.nameOf(m.to, t("chat.someone")) : null;
      privateMark = h("span.badge.chat-private", {
        text: mine ? t("chat.private_to", { name: other }) : t("chat.private_from"),
      });
    }
    return h(
      "li.chat-message",
      {
        dataset: { messageId: m.id, from: m.from, private: m.to ? "true" : "false", mine: String(mine) },
      },
      h("div.chat-meta", {}, who, privateMark, when),
      h("p.chat-text", { text: m.text }),
    );
  }

  /** The "send to" choices: everyone, then whom this person may write to privately. */
  renderRecipients() {
    const self = this.room.self;
    const select = this.el.to;
    const chosen = select.value;
    const people = [...this.room.participants.values()].filter(
      (p) =>
        p.id !== self?.id &&
        p.role !== "recorder" &&
        (self?.role === "mediator" || p.role === "mediator"),
    );
    const options = [h("option", { value: "", text: t("chat.to.everyone") })];
    for (const p of people) {
      options.push(
        h("option", { value: p.id, text: t("chat.to.private", { name: p.name, role: personRole(p) }) }),
      );
    }
    select.replaceChildren(...options);
    select.value = people.some((p) => p.id === chosen) ? chosen : "";
  }

  async send() {
    const text = this.el.text.value.trim();
    if (!text || this.sending) return;
    this.sending = true;
    this.el.send.disabled = true;
    const payload = { text };
    if (this.el.to.value) payload.to = this.el.to.value;
    try {
      const ack = await this.sig.request("chat_send", payload);
      this.el.error.hidden = ack.ok;
      if (ack.ok) {
        this.el.text.value = "";
        this.add(ack.message);
      } else {
        this.el.error.textContent = errorText(ack.error, ack.message, ["chat.error", "reason"]);
      }
    } finally {
      this.sending = false;
      this.el.send.disabled = false;
    }
  }
}
