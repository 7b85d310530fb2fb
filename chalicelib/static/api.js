// The API: one function per endpoint, ApiError, and when an answer may be retried.

import { CODES } from './contract.js';
import { seconds } from './helpers.js';

// API Gateway answers these itself, with its own body ({"message": …}) and no envelope Code.
const GATEWAY_STATUSES = new Set([502, 503, 504]);

/**
 * 'always' | 'if_idempotent' | 'never', from the contract. An envelope Code
 * the contract knows decides. No answer at all (status 0), or a gateway's
 * own 502/503/504 without the envelope, leaves the outcome unknown:
 * 'if_idempotent'. Anything else unknown: 'never'.
 */
function retryRule(status, envelopeCode) {
  if (envelopeCode !== null && Object.hasOwn(CODES, envelopeCode)) return CODES[envelopeCode].retry;
  if (status === 0 || (envelopeCode === null && GATEWAY_STATUSES.has(status))) return 'if_idempotent';
  return 'never';
}

export class ApiError extends Error {
  constructor(status, code, message, { retryAfterMs = null, body = null, rule = 'never', safe = false } = {}) {
    super(message);
    this.status = status;            // 0: no answer (offline, server down)
    this.code = code;                // the envelope's Code, Offline, or HTTP<status>
    this.retryAfterMs = retryAfterMs;
    this.body = body;
    this.rule = rule;                // retryRule's answer
    this.safe = safe;                // the call can be repeated without doing it twice
  }

  /** Worth sending again (a send: with the same idempotency key). */
  get retryable() { return this.rule === 'always' || (this.rule === 'if_idempotent' && this.safe); }
}

function retryAfterMs(header) {
  if (!header) return null;
  const s = Number(header);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const when = Date.parse(header);
  return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
}

/**
 * POST a JSON body; the answer's JSON, or an ApiError carrying the envelope's
 * Code. A 401 Unauthorized is told to `onUnauthorized` (the session's, in its
 * `auth`) before it is thrown: every caller then only stops.
 */
async function call(path, params, { token, key, signal, safe, onUnauthorized }) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (key) headers['Idempotency-Key'] = key;
  let response;
  try {
    // Relative, so a deployed stage prefix (…/api/) is kept.
    response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(params), signal, cache: 'no-store' });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'Offline', 'offline, or the server cannot be reached', { rule: retryRule(0, null), safe });
  }
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON: a proxy's error page */ }
  if (response.ok) {
    // A long-poll answered at once because this user holds the most waiting reads.
    const refused = response.headers.get('X-Wait-Refused');
    if (refused && body) body.waitRefused = refused;
    return body;
  }
  const envelope = body && typeof body.Code === 'string' ? body.Code : null;
  const message = body && typeof body.Message === 'string' ? body.Message : response.statusText;
  const err = new ApiError(response.status, envelope ?? `HTTP${response.status}`, message, {
    retryAfterMs: retryAfterMs(response.headers.get('Retry-After')), body,
    rule: retryRule(response.status, envelope), safe,
  });
  if (envelope === 'Unauthorized' && onUnauthorized) onUnauthorized(err);
  throw err;
}

// `auth` is {token, signal, onUnauthorized}. Reads, and writes that set a state (block, update_group), are safe to
// repeat; so is a send, which always carries its idempotency key. register and create_group are not,
// nor is anything that starts or ends a session.

/** Answers {user_id, user_name, handle, token, session_id}, as login and link do. */
export const register = (params) => call('register', params, { safe: false });

export const login = (params) => call('login', params, { safe: false });

export const link = (params) => call('link', params, { safe: false });

export const linkCode = (auth) => call('link_code', {}, { ...auth, safe: false });

export const sessions = (auth) => call('sessions', {}, { ...auth, safe: true });

/** {} signs this device out; {session_id} another; {all: 1} every one. */
export const logout = (auth, params) => call('logout', params, { ...auth, safe: true });

export const updateAccount = (auth, params) => call('update_account', params, { ...auth, safe: false });

export const deleteAccount = (auth, params) => call('delete_account', params, { ...auth, safe: false });

/** `ids`: at most MAX_USERS_PER_LOOKUP; unknown and deleted users are left out of the answer. */
export const users = (auth, ids) => call('users', { user_ids: ids.join(',') }, { ...auth, safe: true });

export const findUser = (auth, handle) => call('find_user', { handle }, { ...auth, safe: true });

export const createGroup = (auth, groupName) => call('create_group', { group_name: groupName }, { ...auth, safe: false });

export const updateGroup = (auth, params) => call('update_group', params, { ...auth, safe: true });

export const block = (auth, params) => call('block', params, { ...auth, safe: true });

/** The stream: {events, next_after, has_more}; `wait` long-polls (docs/api.md, "The stream"). */
export const sync = (auth, params) => call('sync', params, { ...auth, safe: true });

export const editMessage = (auth, params) => call('edit_message', params, { ...auth, safe: true });

export const deleteMessage = (auth, params) => call('delete_message', params, { ...auth, safe: true });

/** {with_user_id} or {group_id}, and message_id: read up to and including it; a marker never moves back. */
export const markRead = (auth, params) => call('mark_read', params, { ...auth, safe: true });

export const conversations = (auth, params) => call('conversations', params, { ...auth, safe: true });

export const history = (auth, params) => call('history', params, { ...auth, safe: true });

export const groupInfo = (auth, params) => call('group_info', params, { ...auth, safe: true });

/** {user_id, user_name, handle, has_password, read_receipts}. */
export const account = (auth) => call('account', {}, { ...auth, safe: true });

export const connectTicket = (auth, params) => call('connect_ticket', params, { ...auth, safe: true });

/** {attachment_id, upload: {url, fields}, expires_in}: a form for one file (docs/api.md, "Attachments"). Asking again only makes another. */
export const uploadUrl = (auth, params) => call('upload_url', params, { ...auth, safe: true });

/** {url, expires_in}: a short-lived GET of an attachment of a message this account holds. */
export const downloadUrl = (auth, attachmentId) => call('download_url', { attachment_id: attachmentId }, { ...auth, safe: true });

/** What storage said when it refused an upload: S3's XML <Message>, the local server's JSON Message, or the status. */
function storageMessage(xhr) {
  const text = xhr.responseText || '';
  try {
    const body = JSON.parse(text);
    if (body && typeof body.Message === 'string') return body.Message;
  } catch (_) { /* S3 answers XML */ }
  const found = /<Message>([^<]*)<\/Message>/.exec(text);
  return found ? found[1] : `the storage answered ${xhr.status} ${xhr.statusText}`.trim();
}

/**
 * The file POSTed with every field of `upload` (from /upload_url) and the
 * file last, as `file`. XMLHttpRequest, for its upload progress:
 * `onProgress(fraction)`. Resolves on 2xx; else an ApiError (no answer or a
 * 5xx may be tried again, with a new form; a refusal not).
 */
export function uploadFile(upload, file, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields || {})) form.append(name, value);
    form.append('file', file);
    const xhr = new XMLHttpRequest();
    const stop = () => xhr.abort();
    // The page's Content-Security-Policy (connect-src) may not allow the storage's origin: no network
    // error, and retrying cannot help. The violation is told to the document, not to the request.
    const origin = new URL(upload.url, window.location.href).origin;
    let blocked = null;
    const violation = (event) => {
      if (event.blockedURI && event.blockedURI.startsWith(origin)) blocked = event.effectiveDirective || event.violatedDirective;
    };
    document.addEventListener('securitypolicyviolation', violation);
    const done = () => {
      document.removeEventListener('securitypolicyviolation', violation);
      if (signal) signal.removeEventListener('abort', stop);
    };
    xhr.open('POST', upload.url);
    xhr.upload.onprogress = (event) => { if (onProgress && event.lengthComputable) onProgress(event.loaded / event.total); };
    xhr.onload = () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) { if (onProgress) onProgress(1); resolve(); return; }
      const rule = xhr.status >= 500 ? 'always' : 'never';
      reject(new ApiError(xhr.status, `Storage${xhr.status}`, storageMessage(xhr), { rule, safe: true }));
    };
    xhr.onerror = () => setTimeout(() => {   // after the violation's event, when there is one
      done();
      if (blocked) {
        reject(new ApiError(0, 'UploadBlocked', `this page's Content-Security-Policy (${blocked}) does not allow uploads to ${origin}:`
          + ' the server must allow it.', { rule: 'never' }));
        return;
      }
      reject(new ApiError(0, 'Offline', 'offline, or the storage cannot be reached', { rule: retryRule(0, null), safe: true }));
    }, 0);
    xhr.onabort = () => { done(); reject(new DOMException('upload stopped', 'AbortError')); };
    if (signal) {
      if (signal.aborted) { reject(new DOMException('upload stopped', 'AbortError')); return; }
      signal.addEventListener('abort', stop, { once: true });
    }
    xhr.send(form);
  });
}

export function send(auth, kind, params, key) {
  return call(kind === 'group' ? 'send_group' : 'send', params, { ...auth, key, safe: Boolean(key) });
}

/** What a person should read for an error, `waitMs` being when it is retried (if it is). */
export function describe(err, waitMs) {
  const retry = waitMs != null ? ` Trying again in ${seconds(waitMs)} s; the message is kept.` : '';
  switch (err.code) {
    case 'Blocked': return 'Not delivered: this person has blocked you.';
    case 'NotAMember': return 'Not delivered: you are not a member of this group. Join it again to send.';
    case 'RateLimited': return `Too many requests: the server asks to wait ${seconds(waitMs ?? err.retryAfterMs ?? 1000)} s.${waitMs != null ? ' The message is kept and sent then.' : ''}`;
    case 'UserNotFound': return 'No such user: the id is wrong, or the account was deleted.';
    case 'GroupNotFound': return 'No group has this id. Check the id that was pasted.';
    case 'Unauthorized': return 'Your sign-in is no longer valid. Sign in again.';
    case 'Forbidden': return 'The server refused: this profile may not do that.';
    case 'ServiceUnavailable': return `The server is unavailable right now.${retry}`;
    case 'Offline': return `You are offline, or the server cannot be reached.${retry}`;
    case 'GroupFull': return 'This group is full.';
    case 'IdempotencyConflict': return 'The server already has a different message under this key; not sent.';
    case 'HandleTaken': return 'This handle is taken: choose another.';
    case 'EditWindowClosed': return 'This message is too old to be edited.';
    case 'MessageDeleted': return 'This message was deleted: it cannot be edited.';
    case 'MessageNotFound': return 'The server does not have this message (any more).';
    case 'AttachmentNotReady': return `A file is not ready to be sent (${err.message}). Retry uploads it again.`;
    case 'AttachmentNotFound': return 'This file is no longer available: its message was deleted, or is not yours to see.';
    case 'BadCredentials': return err.message || 'The handle or the password is wrong.';
    default: return `${err.message || err.code}${retry}`;
  }
}
