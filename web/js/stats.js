/**
 * Connection quality from `getStats`: packet loss, round-trip time and the video frame
 * rate, summarised as "good" / "fair" / "poor" per participant.
 *
 * For yourself it reads the publisher connection (what the server reports back about
 * your streams: `remote-inbound-rtp`); for the others, the subscriber connection (what
 * arrives from each of them: `inbound-rtp`, matched to participants by mid).
 *
 * @module stats
 */

const POLL_MS = 2000;

/** @typedef {"good"|"fair"|"poor"|"unknown"} QualityLevel */
/**
 * @typedef {object} Quality
 * @property {QualityLevel} level
 * @property {number|null} loss   fraction of packets lost (0..1) since the last poll
 * @property {number|null} rtt    round-trip time in seconds
 * @property {number|null} fps    video frames per second (camera), when video is expected
 */

/**
 * Grade one measurement; the worst of loss, RTT and frame rate wins.
 * @param {{loss: number|null, rtt: number|null, fps: number|null}} m
 * @returns {QualityLevel}
 */
export function classify({ loss, rtt, fps }) {
  const grades = [];
  if (loss !== null && Number.isFinite(loss)) grades.push(loss < 0.02 ? 0 : loss < 0.08 ? 1 : 2);
  if (rtt !== null && Number.isFinite(rtt)) grades.push(rtt < 0.3 ? 0 : rtt < 0.6 ? 1 : 2);
  if (fps !== null && Number.isFinite(fps)) grades.push(fps >= 12 ? 0 : fps >= 5 ? 1 : 2);
  if (grades.length === 0) return "unknown";
  return /** @type {QualityLevel} */ (["good", "fair", "poor"][Math.max(...grades)]);
}

/** The RTT (s) of the connection's selected candidate pair, or null. */
function transportRtt(report) {
  let pairId = null;
  for (const s of report.values()) {
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  }
  for (const s of report.values()) {
    if (s.type !== "candidate-pair") continue;
    if (pairId ? s.id === pairId : s.nominated && s.state === "succeeded") {
      return typeof s.currentRoundTripTime === "number" ? s.currentRoundTripTime : null;
    }
  }
  return null;
}

/**
 * Per-mid figures of the subscriber connection's `inbound-rtp` stats, joined with
 * whose track each mid carries. Used by the quality monitor and the test hook.
 * @param {RTCPeerConnection|null} pc
 * @param {Map<string, import("./subscriber.js").RemoteTrack>} tracks mid -> track
 */
export async function inboundByMid(pc, tracks) {
  if (!pc || pc.connectionState === "closed") return [];
  const report = await pc.getStats();
  const out = [];
  for (const s of report.values()) {
    if (s.type !== "inbound-rtp") continue;
    const info = s.mid !== undefined ? tracks.get(String(s.mid)) : undefined;
    out.push({
      mid: s.mid ?? null,
      participantId: info?.participantId ?? null,
      source: info?.source ?? null,
      kind: s.kind,
      packetsReceived: s.packetsReceived ?? 0,
      packetsLost: s.packetsLost ?? 0,
      bytesReceived: s.bytesReceived ?? 0,
      framesDecoded: s.framesDecoded ?? 0,
      framesPerSecond: s.framesPerSecond ?? null,
      frameWidth: s.frameWidth ?? 0,
      frameHeight: s.frameHeight ?? 0,
      totalSamplesReceived: s.totalSamplesReceived ?? 0,
      codec: report.get(s.codecId)?.mimeType ?? null,
    });
  }
  out.rtt = transportRtt(report);
  return out;
}

/**
 * Polls both connections every two seconds and reports a {@link Quality} per
 * participant id (yourself included).
 */
export class QualityMonitor {
  /**
   * @param {object} opts
   * @param {() => RTCPeerConnection|null} opts.publisherPc
   * @param {() => RTCPeerConnection|null} opts.subscriberPc
   * @param {() => Map<string, import("./subscriber.js").RemoteTrack>} opts.remoteTracks
   * @param {() => string|null} opts.selfId
   * @param {() => string|null} opts.cameraMid the mid of your published camera
   * @param {(participantId: string) => boolean} opts.expectVideo whether their camera is on
   * @param {(q: Map<string, Quality>) => void} opts.onUpdate
   */
  constructor(opts) {
    this.opts = opts;
    this.timer = 0;
    /** @type {Map<string, {received: number, lost: number}>} previous counters per key */
    this.prev = new Map();
    /** @type {Map<string, Quality>} */
    this.last = new Map();
  }

  start() {
    if (!this.timer) this.timer = setInterval(() => this.poll().catch(() => {}), POLL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
  }

  async poll() {
    /** @type {Map<string, Quality>} */
    const result = new Map();
    const self = this.opts.selfId();
    const pub = this.opts.publisherPc();
    if (self && pub && pub.connectionState !== "closed") {
      result.set(self, await this._publisherQuality(pub, self));
    }
    const remote = this.opts.remoteTracks();
    const inbound = await inboundByMid(this.opts.subscriberPc(), remote);
    /** @type {Map<string, {received: number, lost: number, fps: number|null}>} */
    const per = new Map();
    for (const s of inbound) {
      if (!s.participantId) continue;
      const key = `in:${s.mid}`;
      const prev = this.prev.get(key) || { received: 0, lost: 0 };
      this.prev.set(key, { received: s.packetsReceived, lost: s.packetsLost });
      const acc = per.get(s.participantId) || { received: 0, lost: 0, fps: null };
      acc.received += Math.max(0, s.packetsReceived - prev.received);
      acc.lost += Math.max(0, s.packetsLost - prev.lost);
      if (s.kind === "video" && s.source === "camera") acc.fps = s.framesPerSecond ?? 0;
      per.set(s.participantId, acc);
    }
    for (const [pid, acc] of per) {
      const total = acc.received + acc.lost;
      const m = {
        loss: total > 0 ? acc.lost / total : null,
        rtt: inbound.rtt ?? null,
        fps: this.opts.expectVideo(pid) && acc.fps !== null ? acc.fps : null,
      };
      result.set(pid, { level: classify(m), ...m });
    }
    this.last = result;
    this.opts.onUpdate(result);
  }

  async _publisherQuality(pc, self) {
    const report = await pc.getStats();
    let lossSum = 0;
    let lossN = 0;
    let rtt = null;
    let fps = null;
    for (const s of report.values()) {
      if (s.type === "remote-inbound-rtp") {
        if (typeof s.fractionLost === "number") {
          lossSum += s.fractionLost;
          lossN += 1;
        }
        if (typeof s.roundTripTime === "number") rtt = Math.max(rtt ?? 0, s.roundTripTime);
      }
    }
    const cameraMid = this.opts.cameraMid();
    let camera = null;
    for (const s of report.values()) {
      if (s.type === "outbound-rtp" && s.kind === "video" && s.mid === cameraMid) camera = s;
    }
    if (camera && this.opts.expectVideo(self)) fps = camera.framesPerSecond ?? 0;
    const m = { loss: lossN ? lossSum / lossN : null, rtt: rtt ?? transportRtt(report), fps };
    return { level: classify(m), ...m };
  }
}
