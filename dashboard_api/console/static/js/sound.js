// The fire alarm tone, made with WebAudio (no sound file to vendor). Browsers allow audio
// only after a user gesture, hence the one-time "enable sound" click.

let context = null;
let timer = null;

export function soundEnabled() {
  return context !== null && context.state === "running";
}

export async function enableSound() {
  context = context || new AudioContext();
  await context.resume();
  return soundEnabled();
}

function tone() {
  // Two alternating pitches, like a siren: hard to mistake for a notification chime.
  const start = context.currentTime;
  const gain = context.createGain();
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.3, start + 0.05);
  gain.gain.setValueAtTime(0.3, start + 1.45);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + 1.6);
  gain.connect(context.destination);
  const osc = context.createOscillator();
  osc.type = "square";
  for (let i = 0; i < 4; i += 1) {
    osc.frequency.setValueAtTime(i % 2 ? 660 : 880, start + i * 0.4);
  }
  osc.connect(gain);
  osc.start(start);
  osc.stop(start + 1.6);
}

// Sound while `pending()` says an unacknowledged fire is in the list, every 4 s.
export function alarmWhile(pending) {
  if (timer !== null) return;
  const ring = () => {
    if (!pending()) {
      clearInterval(timer);
      timer = null;
      return;
    }
    if (soundEnabled()) tone();
  };
  ring();
  timer = setInterval(ring, 4000);
}
