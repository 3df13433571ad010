/**
 * Camera + microphone preview for the join page: getUserMedia, device lists and a
 * microphone level meter (WebAudio AnalyserNode).
 *
 * The preview never blocks joining: when permission is refused or no device exists,
 * {@link MediaPreview#status} says why and the page shows a note.
 *
 * Events (on the instance, an EventTarget):
 * - `statechange`: status, stream or device selection changed
 * - `devicechange`: the device lists changed (plugged/unplugged, labels became known)
 *
 * @module media-preview
 */

/**
 * Preview status.
 * - `idle`: not started; `starting`: asking the browser
 * - `live`: camera and microphone both running
 * - `audio-only` / `video-only`: one kind is missing (none found, or it failed)
 * - `denied`: the user or browser refused permission
 * - `none`: no camera and no microphone found
 * - `busy`: devices exist but could not be opened (used by another program)
 * - `unsupported`: no mediaDevices API (old browser, or not a secure context)
 * - `error`: anything else
 * @typedef {"idle"|"starting"|"live"|"audio-only"|"video-only"|"denied"|"none"|"busy"|"unsupported"|"error"} PreviewStatus
 */

/** @typedef {{deviceId: string, label: string}} DeviceChoice */

const PERMISSION_ERRORS = new Set(["NotAllowedError", "SecurityError", "PermissionDeniedError"]);
const MISSING_ERRORS = new Set(["NotFoundError", "OverconstrainedError", "DevicesNotFoundError"]);
const BUSY_ERRORS = new Set(["NotReadableError", "TrackStartError", "AbortError"]);

export class MediaPreview extends EventTarget {
  /**
   * @param {object} opts
   * @param {HTMLVideoElement} [opts.video] element that shows the camera
   * @param {HTMLElement} [opts.meter] element whose `--level` CSS variable (0..1) shows the mic level
   */
  constructor({ video, meter } = {}) {
    super();
    /** @type {HTMLVideoElement[]} */
    this.videos = video ? [video] : [];
    this.meter = meter || null;
    /** @type {MediaStream|null} */
    this.stream = null;
    /** @type {PreviewStatus} */
    this.status = "idle";
    /** @type {string} selected camera deviceId ("" = browser default) */
    this.videoDeviceId = "";
    /** @type {string} selected microphone deviceId ("" = browser default) */
    this.audioDeviceId = "";
    /** @type {{audio: DeviceChoice[], video: DeviceChoice[]}} */
    this.devices = { audio: [], video: [] };
    this.enabled = { audio: true, video: true };

    this._generation = 0; // guards against overlapping start() calls
    this._audioCtx = null;
    this._source = null;
    this._analyser = null;
    this._raf = 0;
    this._level = 0;
    this._lastAria = 0;
    this._stopped = false;

    this._onDeviceChange = () => this.refreshDevices();
    if (navigator.mediaDevices?.addEventListener) {
      navigator.mediaDevices.addEventListener("devicechange", this._onDeviceChange);
    }
  }

  /** The microphone's level now, 0..1 for -60..0 dBFS (what the meter shows). */
  get level() {
    return this._level;
  }

  /** Whether the current stream has a live track of this kind. */
  has(kind) {
    return !!this.stream?.getTracks().some((tr) => tr.kind === kind && tr.readyState === "live");
  }

  /**
   * Also show the stream in another video element (e.g. the self view in the room).
   * @param {HTMLVideoElement} video
   */
  attach(video) {
    if (!this.videos.includes(video)) this.videos.push(video);
    this._showStream();
  }

  /**
   * Start (or restart) the preview with the selected devices.
   * @returns {Promise<PreviewStatus>}
   */
  async start() {
    const gen = ++this._generation;
    this._stopped = false;
    this._releaseStream();
    if (!navigator.mediaDevices?.getUserMedia) {
      this._setStatus("unsupported");
      return this.status;
    }
    this._setStatus("starting");

    // What exists? Before permission, Chrome lists one entry per kind with empty labels.
    const known = await this._enumerate();
    const wantVideo = known === null || known.video > 0;
    const wantAudio = known === null || known.audio > 0;
    if (!wantVideo && !wantAudio) {
      if (gen === this._generation) this._setStatus("none");
      return this.status;
    }

    let stream = null;
    let lastError = null;
    const attempts = [];
    if (wantAudio && wantVideo) attempts.push({ audio: true, video: true });
    if (wantAudio) attempts.push({ audio: true, video: false });
    if (wantVideo) attempts.push({ audio: false, video: true });

    for (const want of attempts) {
      try {
        stream = await navigator.mediaDevices.getUserMedia(this._constraints(want));
        break;
      } catch (e) {
        lastError = e;
        if (PERMISSION_ERRORS.has(e?.name)) break; // asking again would not help
        if (e?.name === "OverconstrainedError") {
          // the remembered device is gone: fall back to the default one
          this.videoDeviceId = "";
          this.audioDeviceId = "";
          try {
            stream = await navigator.mediaDevices.getUserMedia(this._constraints(want));
            break;
          } catch (e2) {
            lastError = e2;
          }
        }
      }
    }

    if (gen !== this._generation || this._stopped) {
      // a newer start() or a stop() happened meanwhile
      stream?.getTracks().forEach((tr) => tr.stop());
      return this.status;
    }

    if (!stream) {
      const name = lastError?.name || "";
      if (PERMISSION_ERRORS.has(name)) this._setStatus("denied");
      else if (MISSING_ERRORS.has(name)) this._setStatus("none");
      else if (BUSY_ERRORS.has(name)) this._setStatus("busy");
      else this._setStatus("error");
      console.warn("media preview:", lastError);
      await this.refreshDevices();
      return this.status;
    }

    this.stream = stream;
    for (const track of stream.getTracks()) {
      track.enabled = this.enabled[track.kind] !== false;
      track.addEventListener("ended", () => this._onTrackEnded(track));
      const id = track.getSettings?.().deviceId;
      if (id && track.kind === "video") this.videoDeviceId = id;
      if (id && track.kind === "audio") this.audioDeviceId = id;
    }
    this._showStream();
    this._startMeter();
    await this.refreshDevices(); // labels are known now
    const a = this.has("audio");
    const v = this.has("video");
    this._setStatus(a && v ? "live" : a ? "audio-only" : v ? "video-only" : "none");
    return this.status;
  }

  /**
   * Choose a device and restart the preview with it.
   * @param {"audio"|"video"} kind
   * @param {string} deviceId
   */
  async selectDevice(kind, deviceId) {
    if (kind === "video") this.videoDeviceId = deviceId;
    else this.audioDeviceId = deviceId;
    return this.start();
  }

  /**
   * Switch one device while keeping the other running (in the room: the microphone
   * keeps working while the camera changes). The new track replaces the old one in
   * {@link MediaPreview#stream}; `statechange` follows, so whoever sends the tracks can
   * replace them. Falls back to a full {@link MediaPreview#start} without a stream.
   * @param {"audio"|"video"} kind
   * @param {string} deviceId
   * @returns {Promise<boolean>} whether the device could be opened
   */
  async switchDevice(kind, deviceId) {
    if (kind === "video") this.videoDeviceId = deviceId;
    else this.audioDeviceId = deviceId;
    if (!this.stream || this._stopped) {
      await this.start();
      return this.has(kind);
    }
    const gen = ++this._generation;
    const stream = this.stream;
    // Phones often cannot open a second camera while one is open: release the old first.
    for (const tr of stream.getTracks()) {
      if (tr.kind === kind) {
        stream.removeTrack(tr);
        tr.stop();
      }
    }
    let fresh = null;
    try {
      fresh = await navigator.mediaDevices.getUserMedia(
        this._constraints({ audio: kind === "audio", video: kind === "video" }),
      );
    } catch (e) {
      console.warn("switch device:", e);
    }
    if (gen !== this._generation || this._stopped || this.stream !== stream) {
      fresh?.getTracks().forEach((tr) => tr.stop());
      return false;
    }
    const track = fresh?.getTracks().find((tr) => tr.kind === kind) || null;
    if (track) {
      track.enabled = this.enabled[kind] !== false;
      track.addEventListener("ended", () => this._onTrackEnded(track));
      stream.addTrack(track);
      const id = track.getSettings?.().deviceId;
      if (id) {
        if (kind === "video") this.videoDeviceId = id;
        else this.audioDeviceId = id;
      }
    }
    this._showStream(true);
    if (kind === "audio") this._startMeter();
    await this.refreshDevices();
    const a = this.has("audio");
    const v = this.has("video");
    this._setStatus(a && v ? "live" : a ? "audio-only" : v ? "video-only" : "none");
    return !!track;
  }

  /**
   * Enable or disable the local track of a kind (a muted mic sends silence).
   * @param {"audio"|"video"} kind
   * @param {boolean} enabled
   */
  setEnabled(kind, enabled) {
    this.enabled[kind] = enabled;
    this.stream?.getTracks().forEach((tr) => {
      if (tr.kind === kind) tr.enabled = enabled;
    });
    this._emit("statechange");
  }

  /** Stop every track, the level meter and the audio context. */
  stop() {
    this._stopped = true;
    this._generation++;
    this._releaseStream();
    if (this._audioCtx) {
      this._audioCtx.close().catch(() => {});
      this._audioCtx = null;
    }
    if (navigator.mediaDevices?.removeEventListener) {
      navigator.mediaDevices.removeEventListener("devicechange", this._onDeviceChange);
    }
    this._setStatus("idle");
  }

  /** Re-read the device lists and fire `devicechange`. */
  async refreshDevices() {
    await this._enumerate();
    this._emit("devicechange");
  }

  // ---- internals ----

  /** @returns {Promise<{audio: number, video: number}|null>} counts, or null if unknown */
  async _enumerate() {
    if (!navigator.mediaDevices?.enumerateDevices) return null;
    let list;
    try {
      list = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return null;
    }
    const pick = (kind) =>
      list
        .filter((d) => d.kind === kind)
        .map((d) => ({ deviceId: d.deviceId, label: d.label }));
    this.devices = { audio: pick("audioinput"), video: pick("videoinput") };
    // Some browsers list nothing at all before permission: treat as unknown.
    if (list.length === 0) return null;
    return { audio: this.devices.audio.length, video: this.devices.video.length };
  }

  _constraints({ audio, video }) {
    return {
      audio: audio
        ? {
            ...(this.audioDeviceId ? { deviceId: { exact: this.audioDeviceId } } : {}),
            echoCancellation: true,
            noiseSuppression: true,
            autoGainControl: true,
          }
        : false,
      video: video
        ? {
            ...(this.videoDeviceId
              ? { deviceId: { exact: this.videoDeviceId } }
              : { facingMode: "user" }),
            // VGA: every subscriber receives everyone's camera (no simulcast), so keep
            // it modest; it is also what the recorder and phones handle comfortably
            width: { ideal: 640 },
            height: { ideal: 480 },
            frameRate: { ideal: 20, max: 30 },
          }
        : false,
    };
  }

  /** @param {boolean} [force] reassign even if the same stream (its tracks changed) */
  _showStream(force = false) {
    const stream = this.has("video") ? this.stream : null;
    for (const v of this.videos) {
      v.muted = true; // never play our own microphone back
      v.playsInline = true;
      if (force && v.srcObject === stream) v.srcObject = null;
      if (v.srcObject !== stream) v.srcObject = stream;
      v.classList.toggle("live", !!stream);
      if (stream) v.play().catch(() => {});
    }
  }

  _releaseStream() {
    cancelAnimationFrame(this._raf);
    this._raf = 0;
    if (this._source) {
      this._source.disconnect();
      this._source = null;
    }
    if (this.stream) {
      this.stream.getTracks().forEach((tr) => tr.stop());
      this.stream = null;
    }
    for (const v of this.videos) {
      v.srcObject = null;
      v.classList.remove("live");
    }
    this._paintLevel(0);
  }

  _onTrackEnded(track) {
    if (this._stopped || !this.stream?.getTracks().includes(track)) return;
    // unplugged: forget it and restart on the default device
    if (track.kind === "video") this.videoDeviceId = "";
    else this.audioDeviceId = "";
    this.start();
  }

  _startMeter() {
    cancelAnimationFrame(this._raf);
    this._raf = 0;
    if (this._source) {
      this._source.disconnect();
      this._source = null;
    }
    if (!this.meter || !this.has("audio")) return;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      if (!this._audioCtx) {
        this._audioCtx = new Ctx();
        // autoplay policy: a context created before a user gesture starts suspended
        const resume = () => this._audioCtx?.resume().catch(() => {});
        for (const ev of ["pointerdown", "keydown", "touchend"]) {
          document.addEventListener(ev, resume, { passive: true });
        }
      }
      const ctx = this._audioCtx;
      this._analyser = ctx.createAnalyser();
      this._analyser.fftSize = 1024;
      this._source = ctx.createMediaStreamSource(this.stream);
      this._source.connect(this._analyser); // not to the destination: no echo
      ctx.resume().catch(() => {});
    } catch (e) {
      console.warn("level meter:", e);
      return;
    }
    const data = new Float32Array(this._analyser.fftSize);
    const tick = () => {
      if (!this._analyser || !this._source) return;
      this._analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
      const rms = Math.sqrt(sum / data.length);
      // -60 dBFS .. 0 dBFS -> 0 .. 1, fast attack, slow release
      const db = 20 * Math.log10(rms || 1e-8);
      const target = Math.min(1, Math.max(0, (db + 60) / 60));
      const enabled = this.enabled.audio !== false;
      this._level = enabled ? Math.max(target, this._level * 0.9) : 0;
      this._paintLevel(this._level);
      this._raf = requestAnimationFrame(tick);
    };
    this._raf = requestAnimationFrame(tick);
  }

  _paintLevel(level) {
    if (!this.meter) return;
    this.meter.style.setProperty("--level", level.toFixed(3));
    const now = performance.now();
    if (now - this._lastAria > 500 || level === 0) {
      this._lastAria = now;
      this.meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
    }
  }

  _setStatus(status) {
    this.status = status;
    this._emit("statechange");
  }

  _emit(type) {
    this.dispatchEvent(new Event(type));
  }
}
