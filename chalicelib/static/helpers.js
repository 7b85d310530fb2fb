// Small things the other modules share: keys, counting, back-off and sleeping.

const BACKOFF_CAP_MS = 30000;

/** crypto.randomUUID needs a secure context; `make run HOST=0.0.0.0` over plain http is not one. */
export function newKey() {
  if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const shortId = (id) => String(id).slice(0, 8);
export const seconds = (ms) => Math.max(1, Math.ceil(ms / 1000));

/** Code points, as the server counts. */
export const codePoints = (text) => Array.from(text).length;

/** Exponential, capped, with jitter so many clients do not come back at once. */
export function backoff(attempt) {
  const ceiling = Math.min(BACKOFF_CAP_MS, 1000 * 2 ** Math.min(attempt, 10));
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
}

// Sleepers wake early when the browser comes back online (and on sign-out, through the signal).
const wakeups = new EventTarget();

export function wake() { wakeups.dispatchEvent(new Event('wake')); }

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wakeups.removeEventListener('wake', done);
      if (signal) signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    wakeups.addEventListener('wake', done);
    if (signal) signal.addEventListener('abort', done);
  });
}
