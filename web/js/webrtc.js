/**
 * Small WebRTC helpers shared by the publisher and the subscriber connections.
 * @module webrtc
 */

/** The server does not trickle candidates, and neither do we: wait this long at most. */
export const GATHER_TIMEOUT_MS = 2000;

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
