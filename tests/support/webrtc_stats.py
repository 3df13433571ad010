"""What a page's getStats says about the link and the media it receives, for the impaired
network test and bench/network.py (one place for the JavaScript)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

#: Totals of the subscriber connection (pcSub) per kind, the RTTs of both connections (the
#: selected candidate pair's, from STUN consent checks end to end, and for what the page
#: publishes, RTCP's: remote-inbound-rtp), and the page's own camera encoding ("sent":
#: frames encoded, qualityLimitationReason).
LINK_STATS = """
async () => {
  const out = {video: {}, audio: {}, rtt: {}, sent: {}};
  const fields = [
    "packetsReceived", "packetsLost", "framesDecoded", "framesDropped", "keyFramesDecoded",
    "freezeCount", "totalFreezesDuration", "pauseCount", "nackCount", "pliCount",
    "firCount", "retransmittedPacketsReceived", "concealedSamples", "totalSamplesReceived",
    "silentConcealedSamples", "bytesReceived", "frameWidth", "frameHeight",
  ];
  for (const [name, pc] of [["pub", window.tiaojie.pcPub], ["sub", window.tiaojie.pcSub]]) {
    if (!pc) continue;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        out.rtt[name + "Pair"] = pair.currentRoundTripTime ?? null;
        out.rtt[name + "Local"] = stats.get(pair.localCandidateId)?.candidateType ?? null;
      }
      if (name === "pub" && s.type === "outbound-rtp" && s.kind === "video") {
        out.sent = {
          framesEncoded: (out.sent?.framesEncoded ?? 0) + (s.framesEncoded ?? 0),
          limitation: s.qualityLimitationReason ?? null,
        };
      }
      if (name === "pub" && s.type === "remote-inbound-rtp" && s.kind === "video") {
        out.rtt.pubRtcp = s.roundTripTime ?? null;
      }
      if (name === "sub" && s.type === "inbound-rtp") {
        const totals = out[s.kind];
        for (const f of fields) {
          if (typeof s[f] === "number") totals[f] = (totals[f] ?? 0) + s[f];
        }
      }
    }
  }
  return out;
}
"""


async def link_stats(page: Page) -> dict[str, Any]:
    """`LINK_STATS` of `page`: {"video": {...}, "audio": {...}, "rtt": {...}}."""
    result: dict[str, Any] = await page.evaluate(LINK_STATS)
    return result


def concealment(audio: dict[str, Any]) -> float:
    """The share of received audio samples that were concealed (made up by the decoder)."""
    total = audio.get("totalSamplesReceived", 0)
    return float(audio.get("concealedSamples", 0)) / total if total else 0.0
