/**
 * The mediator's console as tabs beside the videos: 参与人 (lobby, participants, the
 * recording's consents), 邀请 (invite links), 协议 (the agreement and its editor), 聊天
 * (the chat, with its unread count on the tab: chat-panel.js). One
 * tab shows at a time, so each has the column's whole height, and the agreement tab
 * widens the column on wide screens (`#room-layout[data-tab]`, css/app.css).
 *
 * Everyone else has no tabs: the participants and the agreement show one below the
 * other (`data-tab="all"`). The panels ask for a tab with {@link ConsoleTabs#show}
 * (e.g. "go to signing"); for people without tabs that only scrolls.
 *
 * Keyboard: the WAI-ARIA tabs pattern (arrow keys, Home, End move between tabs).
 *
 * @module console-tabs
 */

const $ = (id) => document.getElementById(id);

/** Panels shown to people without the console (the others belong to mediators). */
const EVERYONE = new Set(["panel-people", "panel-agreement", "panel-chat"]);

export class ConsoleTabs extends EventTarget {
  /** @param {import("./room-state.js").RoomState} room */
  constructor(room) {
    super();
    this.room = room;
    this.active = "people";
    this.list = $("console-tabs");
    this.layout = $("room-layout");
    /** @type {HTMLButtonElement[]} */
    this.tabs = [...this.list.querySelectorAll('[role="tab"]')];
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.show(tab.dataset.tab, { focus: false }));
      tab.addEventListener("keydown", (e) => this.onKey(e, tab));
    }
    room.watch(["self"], () => this.render());
  }

  /** Whether this person has the console's tabs (mediators). */
  get enabled() {
    return this.room.isMediator;
  }

  /**
   * Show a tab (mediators; for the others every panel already shows).
   * @param {string} name "people", "invite", "agreement" or "chat"
   * @param {{focus?: boolean}} [opts] move keyboard focus to the tab
   */
  show(name, { focus = false } = {}) {
    const tab = this.tabs.find((x) => x.dataset.tab === name);
    if (!tab) return;
    const changed = this.active !== name;
    this.active = name;
    this.render();
    if (focus && this.enabled) tab.focus();
    if (changed) this.dispatchEvent(new CustomEvent("change", { detail: { tab: name } }));
  }

  render() {
    const on = this.enabled;
    this.list.hidden = !on;
    this.layout.dataset.tab = on ? this.active : "all";
    for (const tab of this.tabs) {
      const selected = tab.dataset.tab === this.active;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      const panel = $(tab.getAttribute("aria-controls"));
      if (panel) panel.hidden = on ? !selected : !EVERYONE.has(panel.id);
    }
  }

  /** @param {KeyboardEvent} e @param {HTMLButtonElement} tab */
  onKey(e, tab) {
    const i = this.tabs.indexOf(tab);
    const n = this.tabs.length;
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1 + n, Home: 0, End: n - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    this.show(this.tabs[to % n].dataset.tab, { focus: true });
  }
}
