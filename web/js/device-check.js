/**
 * The device check: the join page's `check` screen (`#screen-check`), reached from the
 * join screen's "检测设备" button or directly by `/join?check=1#token=…`.
 *
 * Four steps, one after the other, each shown with its result in words (never a colour
 * or an icon alone) and, when it fails, plain advice with "再试一次" and "下一项":
 * - camera: the join page's own preview (no second getUserMedia: phones cannot open a
 *   camera twice) shows frames, and the person answers "我能看到自己";
 * - microphone: a live level meter; passes once sound above {@link MIC_THRESHOLD} is
 *   heard for a moment, fails after {@link MIC_TIMEOUT_MS} of silence;
 * - speaker: "播放声音" plays a short tune (WebAudio, no file), the person answers
 *   听到了 / 没听到;
 * - network: network-probe.js connects to the server's media plane (TURN where the
 *   server configures it) and measures the round trip.
 * Failures never block: "进入调解室" is always there, as on the join screen.
 *
 * Each step's `<li>` carries `data-state` (waiting, active, pass, fail) and the network
 * step `data-rtt` / `data-path` once it passed: the page's tests read those.
 *
 * @module device-check
 */
import { onLangChange, t } from "./i18n.js";
import { probeNetwork } from "./network-probe.js";
import { h } from "./ui.js";

/** The level (0..1 for -60..0 dBFS, as the preview's meter) that counts as sound. */
export const MIC_THRESHOLD = 0.3;
/** Animation frames above the threshold that make a pass (about a tenth of a second). */
const MIC_LOUD_FRAMES = 6;
export const MIC_TIMEOUT_MS = 15000;
/** Frames the camera must deliver, and how long it may take to start. */
const CAMERA_FRAMES = 5;
const CAMERA_TIMEOUT_MS = 10000;
/** A round trip above this works but may stutter: the result says so. */
const SLOW_RTT_MS = 400;

const STEPS = ["camera", "microphone", "speaker", "network"];

/** Preview status -> advice for the camera step and the microphone step. */
const CAMERA_ADVICE = {
  denied: "check.advice.camera_denied",
  busy: "check.advice.camera_busy",
  none: "check.advice.camera_none",
  "audio-only": "check.advice.camera_none",
  unsupported: "check.advice.unsupported",
  error: "check.advice.camera_error",
};
const MIC_ADVICE = {
  denied: "check.advice.mic_denied",
  busy: "check.advice.mic_busy",
  none: "check.advice.mic_none",
  "video-only": "check.advice.mic_none",
  unsupported: "check.advice.unsupported",
  error: "check.advice.mic_error",
};
const NETWORK_ADVICE = {
  no_connection: "check.advice.network_blocked",
  no_server: "check.advice.network_offline",
  busy: "check.advice.network_busy",
  link: "check.advice.network_link",
  unsupported: "check.advice.unsupported",
  failed: "check.advice.network_failed",
};

const $ = (id) => document.getElementById(id);

/**
 * @typedef {object} StepResult
 * @property {boolean} ok
 * @property {string} [advice] the advice's i18n key (a failure)
 * @property {string} [detail] a passed step's i18n key for its detail line
 * @property {Record<string, string|number>} [vars] values for the text's `{name}`s
 * @property {Record<string, string>} [keys] values that are texts themselves (i18n keys)
 */

export class DeviceCheck {
  /**
   * @param {object} opts
   * @param {import("./media-preview.js").MediaPreview} opts.preview the join page's preview
   * @param {string} opts.token the invite token (for the network check)
   * @param {() => void} opts.onEnter "进入调解室"
   * @param {() => void} opts.onBack "返回上一页"
   */
  constructor({ preview, token, onEnter, onBack }) {
    this.preview = preview;
    this.token = token;
    /** @type {Record<string, StepResult|null>} */
    this.results = {};
    this._run = 0; // a new run makes the older one's steps stop
    this._raf = 0;
    this._audio = null;
    /** The failed step whose 再试一次 / 下一项 are awaited, if any. */
    this._choosing = "";
    /** @type {(() => void)|null} the speaker step, waiting for the first 播放声音 */
    this._played = null;
    this.video = /** @type {HTMLVideoElement} */ ($("check-video"));
    preview.attach(this.video);

    $("check-start").addEventListener("click", () => this.start());
    // the tune starts inside the click itself: Safari lets audio start only in a gesture
    $("check-play").addEventListener("click", () => {
      this._playTune();
      this._played?.();
    });
    $("check-again").addEventListener("click", () => this.start());
    $("check-enter").addEventListener("click", () => {
      this.stop();
      onEnter();
    });
    $("check-back").addEventListener("click", () => {
      this.stop();
      onBack();
    });
    for (const name of STEPS) {
      const item = this._item(name);
      const advice = h(
        "div.check-advice.note",
        { role: "alert", hidden: true },
        h("p.check-advice-text"),
        h(
          "div.check-answers",
          {},
          h("button.btn.large", { type: "button", "data-action": "retry" }),
          h("button.btn.large", { type: "button", "data-action": "next" }),
        ),
      );
      item.append(h("p.check-detail", { hidden: true }), advice);
    }
    onLangChange(() => this.render());
    this.reset();
  }

  /** Back to the screen's beginning: every step waiting, "开始检测" on show. */
  reset() {
    this._run++;
    this._stopMeter();
    this._choosing = "";
    this.results = Object.fromEntries(STEPS.map((s) => [s, null]));
    for (const name of STEPS) this._setState(name, "waiting");
    $("check-start").hidden = false;
    $("check-summary").hidden = true;
    $("check-enter").classList.remove("primary"); // the check comes first; joining stays possible
    setI18nKey($("check-play"), "check.speaker.play");
    this.render();
  }

  /** Run the four steps from the first. */
  async start() {
    this.reset();
    const run = this._run;
    $("check-start").hidden = true;
    if (this.preview.status === "idle") this.preview.start();
    for (const name of STEPS) {
      if (run !== this._run) return;
      await this._step(name, run);
    }
    if (run !== this._run) return;
    $("check-summary").hidden = false;
    $("check-enter").classList.add("primary");
    this.render();
    $("check-enter").focus({ preventScroll: false });
  }

  /** Leave the screen: nothing keeps running. */
  stop() {
    this._run++;
    this._stopMeter();
  }

  /** Texts that depend on results (the language switch calls this too). */
  render() {
    for (const name of STEPS) {
      const item = this._item(name);
      const result = this.results[name];
      item.querySelector(".check-status").textContent = t(`check.state.${item.dataset.state}`);
      const detail = item.querySelector(".check-detail");
      detail.hidden = !result?.ok || !result.detail;
      if (result?.ok && result.detail) detail.textContent = t(result.detail, varsOf(result));
      const advice = item.querySelector(".check-advice");
      advice.hidden = !(result && !result.ok && result.advice);
      if (!advice.hidden) advice.querySelector("p").textContent = t(result.advice, varsOf(result));
      // the choice is offered while it is awaited; the advice itself stays
      advice.querySelector(".check-answers").hidden = this._choosing !== name;
      advice.querySelector('[data-action="retry"]').textContent = t("check.retry");
      const next = advice.querySelector('[data-action="next"]');
      next.textContent = t(name === "network" ? "check.finish" : "check.next");
    }
    const failed = STEPS.filter((s) => this.results[s] && !this.results[s].ok).length;
    $("check-summary-text").textContent = failed
      ? t("check.summary.failed", { count: failed })
      : t("check.summary.ok");
    $("check-summary").dataset.failed = String(failed);
  }

  // ---- the steps ----

  /** Run step `name` until it passes or the person goes on after a failure. */
  async _step(name, run) {
    for (;;) {
      this.results[name] = null;
      this._setState(name, "active");
      this._item(name).scrollIntoView({ block: "nearest" });
      const result = await this[`_${name}`](run);
      if (run !== this._run) return;
      this.results[name] = result;
      this._setState(name, result.ok ? "pass" : "fail");
      if (result.ok) return;
      const choice = await this._choose(name);
      if (run !== this._run || choice === "next") return;
    }
  }

  /** @returns {Promise<StepResult>} */
  async _camera(run) {
    const item = this._item("camera");
    const ask = item.querySelector(".check-ask");
    ask.hidden = true;
    $("check-preview").classList.remove("has-video");
    const status = await this._previewReady();
    if (run !== this._run) return { ok: false };
    if (!this.preview.has("video")) {
      return { ok: false, advice: CAMERA_ADVICE[status] || CAMERA_ADVICE.error };
    }
    $("check-preview").classList.add("has-video");
    if (!(await framesArrive(this.video, CAMERA_FRAMES, CAMERA_TIMEOUT_MS))) {
      return { ok: false, advice: "check.advice.camera_no_picture" };
    }
    if (run !== this._run) return { ok: false };
    ask.hidden = false;
    const answer = await answerOf(ask);
    ask.hidden = true;
    return answer === "yes" ? { ok: true } : { ok: false, advice: "check.advice.camera_not_seen" };
  }

  /** @returns {Promise<StepResult>} */
  async _microphone(run) {
    const status = await this._previewReady();
    if (run !== this._run) return { ok: false };
    if (!this.preview.has("audio")) {
      return { ok: false, advice: MIC_ADVICE[status] || MIC_ADVICE.error };
    }
    const meter = $("check-meter");
    const heard = await new Promise((resolve) => {
      let loud = 0;
      const started = performance.now();
      const tick = () => {
        if (run !== this._run) return resolve(false);
        const level = this.preview.level;
        meter.style.setProperty("--level", level.toFixed(3));
        meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
        if (level >= MIC_THRESHOLD) loud++;
        if (loud >= MIC_LOUD_FRAMES) return resolve(true);
        if (performance.now() - started > MIC_TIMEOUT_MS) return resolve(false);
        this._raf = requestAnimationFrame(tick);
      };
      this._raf = requestAnimationFrame(tick);
    });
    this._stopMeter();
    return heard ? { ok: true } : { ok: false, advice: "check.advice.mic_silent" };
  }

  /** @returns {Promise<StepResult>} */
  async _speaker(run) {
    const item = this._item("speaker");
    const ask = item.querySelector(".check-ask");
    const play = $("check-play");
    ask.hidden = true;
    play.hidden = false;
    await new Promise((resolve) => {
      this._played = resolve;
    });
    this._played = null;
    if (run !== this._run) return { ok: false };
    setI18nKey(play, "check.speaker.again"); // it stays, to hear the tune again
    ask.hidden = false;
    const answer = await answerOf(ask);
    setI18nKey(play, "check.speaker.play");
    ask.hidden = true;
    return answer === "yes" ? { ok: true } : { ok: false, advice: "check.advice.speaker" };
  }

  /** @returns {Promise<StepResult>} */
  async _network() {
    const item = this._item("network");
    delete item.dataset.rtt;
    delete item.dataset.path;
    const result = await probeNetwork(this.token);
    if (!result.ok) {
      item.dataset.error = result.error || "failed";
      return { ok: false, advice: NETWORK_ADVICE[result.error] || NETWORK_ADVICE.failed };
    }
    delete item.dataset.error;
    item.dataset.rtt = String(result.rtt);
    item.dataset.path = result.path || "direct";
    const slow = (result.rtt ?? 0) > SLOW_RTT_MS;
    return {
      ok: true,
      detail: slow ? "check.network.slow" : "check.network.ok",
      vars: { rtt: result.rtt ?? 0 },
      keys: { path: `check.network.path.${item.dataset.path}` },
    };
  }

  // ---- helpers ----

  /** The preview's status once it is no longer starting. */
  async _previewReady() {
    const preview = this.preview;
    if (preview.status === "idle") preview.start();
    while (preview.status === "starting" || preview.status === "idle") {
      await new Promise((resolve) =>
        preview.addEventListener("statechange", resolve, { once: true }),
      );
    }
    return preview.status;
  }

  /** After a failure: wait for "再试一次" (retry) or "下一项" (next). */
  _choose(name) {
    const advice = this._item(name).querySelector(".check-advice");
    this._choosing = name;
    this.render();
    return new Promise((resolve) => {
      const onClick = (e) => {
        const action = e.target.closest("[data-action]")?.dataset.action;
        if (!action) return;
        advice.removeEventListener("click", onClick);
        this._choosing = "";
        this.render();
        if (action === "retry" && (name === "camera" || name === "microphone")) {
          // a refused or busy device: ask the browser again
          if (!this.preview.has(name === "camera" ? "video" : "audio")) this.preview.start();
        }
        resolve(action);
      };
      advice.addEventListener("click", onClick);
    });
  }

  _playTune() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      this._audio ??= new Ctx();
      const ctx = this._audio;
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      const start = ctx.currentTime + 0.05;
      // a friendly rising tune, loud enough on a phone's speaker: C5 E5 G5 C6
      [523.25, 659.25, 783.99, 1046.5].forEach((hz, i) => {
        const at = start + i * 0.35;
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = hz;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.5, at + 0.03);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.33);
        osc.connect(gain).connect(ctx.destination);
        osc.start(at);
        osc.stop(at + 0.35);
      });
    } catch (e) {
      console.warn("device check tune:", e);
    }
  }

  _stopMeter() {
    cancelAnimationFrame(this._raf);
    this._raf = 0;
    const meter = $("check-meter");
    meter.style.setProperty("--level", "0");
    meter.setAttribute("aria-valuenow", "0");
  }

  _item(name) {
    return $(`check-${name}`);
  }

  _setState(name, state) {
    const item = this._item(name);
    item.dataset.state = state;
    item.querySelector(".check-body").hidden = state !== "active";
    if (state !== "pass" && state !== "fail") this.results[name] = null;
    this.render();
  }
}

/** A result's values for its texts, the translated ones in today's language. */
function varsOf(result) {
  const vars = { ...result.vars };
  for (const [name, key] of Object.entries(result.keys || {})) vars[name] = t(key);
  return vars;
}

/** Set a button's text from a key, kept translated (applyI18n reads data-i18n). */
function setI18nKey(el, key) {
  el.dataset.i18n = key;
  el.textContent = t(key);
}

/** The `data-answer` of the first answer button pressed inside `box`. */
function answerOf(box) {
  return new Promise((resolve) => {
    const onClick = (e) => {
      const answer = e.target.closest("[data-answer]")?.dataset.answer;
      if (!answer) return;
      box.removeEventListener("click", onClick);
      resolve(answer);
    };
    box.addEventListener("click", onClick);
  });
}

/**
 * Whether `video` shows `count` new frames within `timeoutMs` (a camera can be "live"
 * and still deliver nothing: covered, or held by a driver).
 * @param {HTMLVideoElement} video
 */
function framesArrive(video, count, timeoutMs) {
  return new Promise((resolve) => {
    let seen = 0;
    let lastTime = -1;
    const timer = setTimeout(() => done(false), timeoutMs);
    let finished = false;
    const done = (result) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(result);
    };
    video.play().catch(() => {});
    if (video.requestVideoFrameCallback) {
      const onFrame = () => {
        if (finished) return;
        if (++seen >= count) return done(true);
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    } else {
      // older browsers: the playback position moves on while frames arrive
      const poll = () => {
        if (finished) return;
        if (video.videoWidth > 0 && video.currentTime !== lastTime) {
          lastTime = video.currentTime;
          if (++seen >= count) return done(true);
        }
        setTimeout(poll, 100);
      };
      poll();
    }
  });
}
