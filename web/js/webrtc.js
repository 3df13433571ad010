/**
 * Small WebRTC helpers shared by the publisher and the subscriber connections.
 * @module webrtc
 */

/** How long {@link iceGatheringDone} waits at most (the network check's probe). */
export const GATHER_TIMEOUT_MS = 2000;

/**
 * Trickle ICE (docs/PROTOCOL.md, `ice_candidate`): the room's connections send their
 * offer or answer at once, without waiting for their candidates; the browser's checks
 * reach the server (whose candidates are in its SDP) and the server learns the address
 * from them. Each candidate gathered is also sent with `ice_candidate`, held until the
 * returned function is called: once the server acknowledged the description (applied).
 * End-of-candidates is not sent: the server keeps learning addresses from checks.
 * @param {RTCPeerConnection} pc
 * @param {import("./signalling.js").Signalling} sig
 * @param {"publisher"|"subscriber"} connection
 * @returns {() => void} call when the server has the description
 */
export function trickle(pc, sig, connection) {
  const held = [];
  let open = false;
  const send = (c) => {
    sig.request("ice_candidate", { connection, candidate: c.candidate, sdpMid: c.sdpMid ?? undefined });
  };
  pc.addEventListener("icecandidate", ({ candidate }) => {
    if (!candidate?.candidate) return;
    if (open) send(candidate);
    else held.push(candidate);
  });
  return () => {
    if (open) return;
    open = true;
    for (const c of held.splice(0)) send(c);
  };
}

/**
 * Resolve once ICE gathering is complete, or after `timeoutMs` (whichever comes first),
 * so the SDP we send carries our candidates.
 * @param {RTCPeerConnection} pc
 * @param {number} [timeoutMs]
 * @returns {Promise<void>}
 */
export function iceGatheringDone(pc, timeoutMs = GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * A new RTCPeerConnection with the room's ICE servers (from `room_state.ice_servers`).
 * @param {RTCIceServer[]} [iceServers]
 */
export function newPeerConnection(iceServers = []) {
  return new RTCPeerConnection({
    iceServers: Array.isArray(iceServers) ? iceServers : [],
    bundlePolicy: "max-bundle",
    rtcpMuxPolicy: "require",
  });
}

/**
 * Codecs for `setCodecPreferences`, in the order the server prefers them:
 * video H264 packetization-mode=1 (constrained baseline first), then VP8, plus RTX;
 * audio Opus first, the rest after it.
 * @param {"audio"|"video"} kind
 * @param {"sender"|"receiver"} [side] whose capabilities to list
 * @returns {RTCRtpCodec[]}
 */
export function preferredCodecs(kind, side = "sender") {
  const Cls = side === "sender" ? window.RTCRtpSender : window.RTCRtpReceiver;
  const codecs = Cls?.getCapabilities?.(kind)?.codecs || [];
  const mime = (c) => c.mimeType.toLowerCase();
  const fmtp = (c) => (c.sdpFmtpLine || "").toLowerCase();
  if (kind === "audio") {
    const opus = codecs.filter((c) => mime(c) === "audio/opus");
    return [...opus, ...codecs.filter((c) => !opus.includes(c))];
  }
  const h264 = codecs
    .filter((c) => mime(c) === "video/h264" && /packetization-mode=1/.test(fmtp(c)))
    .sort((a, b) => h264Rank(a) - h264Rank(b));
  const vp8 = codecs.filter((c) => mime(c) === "video/vp8");
  const rtx = codecs.filter((c) => mime(c) === "video/rtx");
  return [...h264, ...vp8, ...rtx];
}

/** Constrained baseline (42e0..) first, then baseline (4200..), then other profiles. */
function h264Rank(codec) {
  const m = /profile-level-id=([0-9a-f]{4})/i.exec(codec.sdpFmtpLine || "");
  const profile = m ? m[1].toLowerCase() : "";
  if (profile === "42e0") return 0;
  if (profile === "4200") return 1;
  return 2;
}

/**
 * Apply {@link preferredCodecs} to a transceiver. Browsers differ on whose capabilities
 * a sendonly transceiver accepts, so try the sender's, then the receiver's; a browser
 * without `setCodecPreferences` keeps its defaults (the server accepts VP8 too).
 * @param {RTCRtpTransceiver} transceiver
 * @param {"audio"|"video"} kind
 */
export function applyCodecPreferences(transceiver, kind) {
  if (typeof transceiver.setCodecPreferences !== "function") return;
  for (const side of ["sender", "receiver"]) {
    const codecs = preferredCodecs(kind, side);
    if (codecs.length === 0) continue;
    try {
      transceiver.setCodecPreferences(codecs);
      return;
    } catch (e) {
      console.warn(`setCodecPreferences (${kind}, ${side} capabilities):`, e);
    }
  }
}
