/**
 * A short two-note chime (WebAudio, no sound file) for what a person must not miss:
 * signing has started and it is their turn. The page has had the person's click (the
 * join button), so browsers let it play.
 *
 * @module chime
 */

/** @type {AudioContext|null} */
let context = null;

/** Play the chime; never throws (no audio is not an error). */
export function chime() {
  try {
    const Ctx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    if (!Ctx) return;
    context ??= new Ctx();
    if (context.state === "suspended") context.resume().catch(() => {});
    const start = context.currentTime + 0.02;
    [880, 660].forEach((hz, i) => {
      const at = start + i * 0.28;
      const osc = context.createOscillator();
      const gain = context.createGain();
      osc.type = "sine";
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.5);
      osc.connect(gain).connect(context.destination);
      osc.start(at);
      osc.stop(at + 0.55);
    });
  } catch (e) {
    console.warn("no chime:", e);
  }
}
