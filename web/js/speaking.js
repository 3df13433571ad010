/**
 * "Who is speaking": the level of each participant's audio track, measured with a
 * WebAudio AnalyserNode (one shared AudioContext, nothing connected to the speakers:
 * the tiles' media elements play the sound).
 *
 * @module speaking
 */

const TICK_MS = 100;
/** RMS level (dBFS) above which someone counts as speaking. */
const SPEAKING_DB = -45;
/** Keep the indicator this long after the level drops, so it does not flicker. */
const HOLD_MS = 600;

export class SpeakingDetector {
  /**
   * @param {(key: string, speaking: boolean) => void} onChange
   */
  constructor(onChange) {
    this.onChange = onChange;
    /** @type {Map<string, {track: MediaStreamTrack, source: MediaStreamAudioSourceNode, analyser: AnalyserNode, data: Float32Array, speaking: boolean, lastLoud: number}>} */
    this.entries = new Map();
    this.ctx = null;
    this.timer = 0;
  }

  /**
   * Measure `track` under `key` (a participant id); replaces what was measured there.
   * @param {string} key
   * @param {MediaStreamTrack|null} track
   */
  watch(key, track) {
    const old = this.entries.get(key);
    if (old && old.track === track) return;
    this.unwatch(key);
    if (!track || track.kind !== "audio") return;
    const ctx = this._context();
    if (!ctx) return;
    try {
      const source = ctx.createMediaStreamSource(new MediaStream([track]));
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      this.entries.set(key, {
        track,
        source,
        analyser,
        data: new Float32Array(analyser.fftSize),
        speaking: false,
        lastLoud: 0,
      });
    } catch (e) {
      console.warn("speaking detector:", e);
      return;
    }
    if (!this.timer) this.timer = setInterval(() => this._tick(), TICK_MS);
  }

  /** Stop measuring `key`. */
  unwatch(key) {
    const e = this.entries.get(key);
    if (!e) return;
    e.source.disconnect();
    this.entries.delete(key);
    if (e.speaking) this.onChange(key, false);
  }

  /** Keys being measured. */
  keys() {
    return [...this.entries.keys()];
  }

  /** Stop everything and close the audio context. */
  stop() {
    for (const key of this.keys()) this.unwatch(key);
    clearInterval(this.timer);
    this.timer = 0;
    this.ctx?.close().catch(() => {});
    this.ctx = null;
  }

  _context() {
    if (this.ctx) return this.ctx;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    this.ctx = new Ctx();
    // autoplay policy: a context created without a recent user gesture starts suspended
    const resume = () => this.ctx?.resume().catch(() => {});
    resume();
    for (const ev of ["pointerdown", "keydown", "touchend"]) {
      document.addEventListener(ev, resume, { passive: true });
    }
    return this.ctx;
  }

  _tick() {
    const now = performance.now();
    for (const [key, e] of this.entries) {
      let loud = false;
      if (e.track.readyState === "live" && e.track.enabled) {
        e.analyser.getFloatTimeDomainData(e.data);
        let sum = 0;
        for (let i = 0; i < e.data.length; i++) sum += e.data[i] * e.data[i];
        const db = 20 * Math.log10(Math.sqrt(sum / e.data.length) || 1e-8);
        loud = db > SPEAKING_DB;
      }
      if (loud) e.lastLoud = now;
      const speaking = loud || now - e.lastLoud < HOLD_MS;
      if (speaking !== e.speaking) {
        e.speaking = speaking;
        this.onChange(key, speaking);
      }
    }
  }
}
