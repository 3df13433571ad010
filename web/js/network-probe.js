/**
 * The device check's network test: can this browser reach the server's media plane, and
 * how long does a round trip take? `GET /api/probe` gives the ICE servers (TURN where
 * the server configures it, as in the room); a data-channel-only connection is offered
 * to `POST /api/probe`, whose answer is a short-lived connection of the media plane that
 * echoes (docs/PROTOCOL.md, "Network check").
 *
 * @module network-probe
 */
import { ApiError, callJson } from "./api.js";
import { iceGatheringDone } from "./webrtc.js";

/** How long ICE and DTLS may take to connect (TURN over TCP is slow to start). */
export const CONNECT_TIMEOUT_MS = 15000;
/** Gathering may take longer than in the room: a TURN allocation is part of it. */
const GATHER_TIMEOUT_MS = 5000;
const PINGS = 5;
const PING_TIMEOUT_MS = 3000;

/**
 * The outcome of a network check.
 * - `ok`: connected; `rtt` (ms, the median of the echoes), `path` ("direct" / "relay")
 * - `error`: why not: "no_connection" (ICE or DTLS did not connect: a firewall),
 *   "no_server" (the API could not be reached), "busy" (the server is at its limit, or
 *   this link checked too often), "link" (the link cannot be used: `code` says why),
 *   "unsupported" (no WebRTC), "failed" (anything else)
 * @typedef {{ok: boolean, rtt?: number, path?: string, error?: string, code?: string}} ProbeResult
 */

/**
 * Check the network once.
 * @param {string} token the invite token
 * @param {{connectTimeoutMs?: number}} [opts]
 * @returns {Promise<ProbeResult>}
 */
export async function probeNetwork(token, { connectTimeoutMs = CONNECT_TIMEOUT_MS } = {}) {
  if (!window.RTCPeerConnection) return { ok: false, error: "unsupported" };
  let pc = null;
  try {
    const settings = await callJson("GET", "/api/probe", token);
    pc = new RTCPeerConnection({
      iceServers: Array.isArray(settings.ice_servers) ? settings.ice_servers : [],
      bundlePolicy: "max-bundle",
    });
    const channel = pc.createDataChannel("probe", { ordered: true });
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc, GATHER_TIMEOUT_MS);
    const answer = await callJson("POST", "/api/probe", token, {
      sdp: pc.localDescription.sdp,
      type: "offer",
    });
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    if (!(await opened(pc, channel, connectTimeoutMs))) {
      return { ok: false, error: "no_connection" };
    }
    const rtts = [];
    for (let i = 0; i < PINGS; i++) {
      const rtt = await ping(channel, `ping ${i} ${performance.now()}`);
      if (rtt === null) break;
      rtts.push(rtt);
    }
    if (!rtts.length) return { ok: false, error: "no_connection" };
    rtts.sort((a, b) => a - b);
    const rtt = Math.round(rtts[Math.floor(rtts.length / 2)]);
    return { ok: true, rtt, path: await pathOf(pc) };
  } catch (e) {
    if (e instanceof ApiError) {
      if (e.code === "network" || (e.status >= 500 && e.code !== "probe_busy")) {
        return { ok: false, error: "no_server", code: e.code };
      }
      if (e.code === "probe_busy" || e.code === "rate_limited") {
        return { ok: false, error: "busy", code: e.code };
      }
      if (e.status === 401 || e.status === 403 || e.status === 404 || e.status === 410) {
        return { ok: false, error: "link", code: e.code };
      }
    }
    console.warn("network check:", e);
    return { ok: false, error: "failed", code: String(e?.name || e) };
  } finally {
    pc?.close(); // the server closes its side when the channel goes
  }
}

/** Whether `channel` opens within `timeoutMs` (false at once if the connection fails). */
function opened(pc, channel, timeoutMs) {
  if (channel.readyState === "open") return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (result) => {
      clearTimeout(timer);
      channel.removeEventListener("open", onOpen);
      pc.removeEventListener("connectionstatechange", onState);
      resolve(result);
    };
    const onOpen = () => done(true);
    const onState = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") done(false);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    channel.addEventListener("open", onOpen);
    pc.addEventListener("connectionstatechange", onState);
  });
}

/** Milliseconds until `message` comes back, or null. */
function ping(channel, message) {
  return new Promise((resolve) => {
    const sent = performance.now();
    const done = (result) => {
      clearTimeout(timer);
      channel.removeEventListener("message", onMessage);
      resolve(result);
    };
    const onMessage = (e) => {
      if (e.data === message) done(performance.now() - sent);
    };
    const timer = setTimeout(() => done(null), PING_TIMEOUT_MS);
    channel.addEventListener("message", onMessage);
    channel.send(message);
  });
}

/** "relay" when the connection goes through a TURN server, else "direct". */
async function pathOf(pc) {
  try {
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) {
        pair = stats.get(s.selectedCandidatePairId);
      }
    });
    stats.forEach((s) => {
      if (!pair && s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    });
    const local = pair ? stats.get(pair.localCandidateId) : null;
    return local?.candidateType === "relay" ? "relay" : "direct";
  } catch {
    return "direct";
  }
}
