// Small things the other modules share: keys, counting, handles, device names, back-off and sleeping.

import { MAX_DEVICE_NAME_CHARS, MAX_HANDLE_CHARS, MIN_HANDLE_CHARS, MIN_PASSWORD_CHARS } from './contract.js';

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

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A handle as the server takes it (any case; it answers lower case); a leading @ is dropped. */
export function asHandle(text) {
  const handle = text.trim().replace(/^@/, '').toLowerCase();
  return handle.length >= MIN_HANDLE_CHARS && handle.length <= MAX_HANDLE_CHARS && /^[a-z][a-z0-9_]*$/.test(handle)
    ? handle : null;
}

export const HANDLE_RULE = `A handle has ${MIN_HANDLE_CHARS} to ${MAX_HANDLE_CHARS} characters: a letter, then letters, digits or _.`;

/** Why `password` cannot be set (registering or in Account), or null; `hasHandle`: one to sign in with, held or given. */
export function passwordProblem(password, hasHandle) {
  if (!hasHandle) return 'A password needs a handle to sign in with: choose one too.';
  if (codePoints(password) < MIN_PASSWORD_CHARS) return `A password has at least ${MIN_PASSWORD_CHARS} characters.`;
  return null;
}

/** The server's timestamps carry microseconds; not every browser parses more than milliseconds. */
export function parseTime(iso) {
  const when = Date.parse(String(iso).replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(when) ? null : when;
}

/** "Chrome on Linux", from the user agent: how this browser is listed among the account's devices. */
export function deviceName(ua = navigator.userAgent) {
  const browsers = [[/Edg(e|A|iOS)?\//, 'Edge'], [/OPR\/|Opera/, 'Opera'], [/SamsungBrowser\//, 'Samsung Internet'],
    [/Firefox\/|FxiOS\//, 'Firefox'], [/Chrome\/|CriOS\/|Chromium\//, 'Chrome'], [/Safari\//, 'Safari']];
  const systems = [[/iPhone/, 'iPhone'], [/iPad/, 'iPad'], [/Android/, 'Android'], [/CrOS/, 'ChromeOS'],
    [/Windows/, 'Windows'], [/Macintosh|Mac OS X/, 'macOS'], [/Linux|X11/, 'Linux']];
  const find = (list) => (list.find(([re]) => re.test(ua)) || [null, null])[1];
  const browser = find(browsers);
  const system = find(systems);
  const name = browser && system ? `${browser} on ${system}` : browser || system || 'Web browser';
  return Array.from(name).slice(0, MAX_DEVICE_NAME_CHARS).join('');
}

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

/** "512 bytes", "1.4 KB", "3.2 MB": a file's size as people read it (powers of 1024). */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 1024) return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
  const units = ['KB', 'MB', 'GB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A message in one line (the conversation list, announcements): its text, else its files. */
export function summary(record) {
  if (record.text) return record.text;
  const files = record.attachments || [];
  if (!files.length) return '';
  const first = files[0].file_name || 'unnamed';
  if (files.length > 1) return `${files.length} files: ${first} and ${files.length - 1} more`;
  return `${String(files[0].content_type).startsWith('image/') ? 'Picture' : 'File'}: ${first}`;
}
