/* Sending: each message is stored with its own idempotency key before it
 * goes out, then sent one at a time, in order, under that key until the
 * server acknowledges it. An answer the contract allows to retry (see
 * api.js) is retried after Retry-After or a back-off; any other marks the
 * message failed, and the person has its Retry button.
 *
 * A message with files uploads them first, one by one (/upload_url, then the
 * form to storage), each attachment_id kept in the record once its file is
 * stored; the send carries them. The files themselves are kept in the record
 * (IndexedDB holds Blobs) until the server acknowledges the message, so a
 * reload mid-upload uploads them again; a browser that did not keep them
 * marks the message failed, and the files must be attached again.
 */

import { ApiError, describe, send, uploadFile, uploadUrl } from './api.js';
import { MAX_FILE_NAME_CHARS } from './contract.js';
import { backoff, formatBytes, newKey, sleep, summary } from './helpers.js';

/** Errors about one file: retrying the same file cannot help. */
const FILE_REFUSED = new Set(['BadRequest', 'PayloadTooLarge', 'UnsupportedMediaType', 'FileNotKept']);

function fileName(file) {
  const name = Array.from(file.name || '').slice(0, MAX_FILE_NAME_CHARS).join('');
  return name || null;
}

export async function queueSend(s, conv, text, files = []) {
  const key = newKey();
  const record = {
    key: `pending:${key}`, client_message_id: key, conv: conv.id, kind: conv.kind, to: conv.target,
    sender_id: s.me, group_id: conv.kind === 'group' ? conv.target : null, text, created: Date.now(),
    sent_at: null, state: 'pending',
    attachments: files.map((file) => ({
      attachment_id: null, content_type: file.type || 'application/octet-stream', size: file.size,
      file_name: fileName(file), file,
    })),
  };
  conv.last_at = Date.now();
  conv.last_text = summary(record);
  // Stored with its key before it is sent: a reload mid-send retries under the same key.
  try {
    await s.store.write({ messages: [record], conversations: [conv] });
  } catch (_) {
    // A browser that refuses to keep the files (a Blob in IndexedDB): the message is kept without them,
    // and a reload before it is sent marks it failed (outbox: FileNotKept) rather than losing it.
    const kept = { ...record, attachments: record.attachments.map(({ file, ...rest }) => rest) };
    await s.persist({ messages: [kept], conversations: [conv] });
  }
  s.messagesOf(conv.id).set(record.key, record);
  s.view.render(s);
  s.outbox.push(record);
  pump(s);
}

/** Sends stored as pending before a reload go out again under their own keys. */
export function resumePending(s) {
  const pending = [...s.messages.values()].flatMap((m) => [...m.values()]).filter((r) => r.state === 'pending');
  pending.sort((a, b) => a.created - b.created);
  s.outbox.push(...pending);
  pump(s);
}

/** One message at a time, in order; a retrying one holds the later ones back. */
async function pump(s) {
  if (s.pumping) return;
  s.pumping = true;
  try {
    while (s.alive && s.outbox.length) {
      await deliver(s, s.outbox[0]);
      s.outbox.shift();
    }
  } finally { s.pumping = false; }
}

/** What the person reads for a failed upload: which file, and what the server said. */
function describeFile(err, wait) {
  const name = `“${err.file.file_name || 'the file'}”`;
  if (err.code === 'PayloadTooLarge') return `${name} (${formatBytes(err.file.size)}) is too large to send: ${err.message}`;
  if (FILE_REFUSED.has(err.code)) return `${name} cannot be sent: ${err.message}`;
  return `${name} is not uploaded: ${describe(err, wait)}`;
}

const explain = (err, wait) => (err.file ? describeFile(err, wait) : describe(err, wait));

/** The record as it is now (its attachments' ids) kept in the store. */
function saveRecord(s, record) {
  return s.exclusive(async () => {
    const now = s.messagesOf(record.conv).get(record.key);
    if (now) await s.persist({ messages: [now] });
  });
}

/** Each file not stored yet: a form from /upload_url, the upload (its progress shown), its id kept. */
async function uploadAll(s, record) {
  const files = record.attachments || [];
  for (const [index, a] of files.entries()) {
    if (a.attachment_id) continue;
    const about = (err) => Object.assign(err, { file: a });
    if (!(a.file instanceof Blob)) {
      throw about(new ApiError(0, 'FileNotKept',
        'this browser did not keep the file while the page was reloaded. Attach it again.', { rule: 'never' }));
    }
    s.view.showProgress(s, record, index, null);
    let form;
    try {
      const params = { content_type: a.content_type, size: a.size };
      if (a.file_name) params.file_name = a.file_name;
      form = await uploadUrl(s.auth, params);
      await uploadFile(form.upload, a.file, {
        signal: s.abort.signal, onProgress: (fraction) => s.view.showProgress(s, record, index, fraction),
      });
    } catch (err) {
      throw err instanceof ApiError ? about(err) : err;
    }
    a.attachment_id = form.attachment_id;
    await saveRecord(s, record);
  }
}

async function deliver(s, record) {
  let attempt = 0;
  while (s.alive) {
    try {
      await uploadAll(s, record);
      const params = record.kind === 'group'
        ? { sending_user_id: s.me, group_id: record.to } : { sending_user_id: s.me, receiving_user_id: record.to };
      if (record.text || !(record.attachments || []).length) params.message_text = record.text;
      if ((record.attachments || []).length) params.attachment_ids = record.attachments.map((a) => a.attachment_id).join(',');
      const answer = await send(s.auth, record.kind, params, record.client_message_id);
      await settle(s, record, { state: 'sent', message_id: answer.message_id, sent_at: answer.sent_at, error: null });
      const shown = s.errors.get(record.conv);
      if (shown && shown.key === record.client_message_id) s.view.clearError(s, record.conv);
      return;
    } catch (err) {
      if (!s.alive || err.name === 'AbortError') return;
      if (err.code === 'Unauthorized') return;   // stays pending: this device is signed out (api.js), or signing out
      if (err.retryable) {
        const wait = err.retryAfterMs ?? backoff(attempt);
        attempt += 1;
        s.view.showError(s, record.conv, explain(err, wait), record.client_message_id);
        await sleep(wait, s.abort.signal);
        continue;
      }
      const retryable = !FILE_REFUSED.has(err.code);
      await settle(s, record, { state: 'failed', error: explain(err), error_code: err.code, retryable });
      s.view.showError(s, record.conv, explain(err), record.client_message_id);
      if (err.code === 'NotAMember') s.markMembership(record.conv, false);
      return;
    }
  }
}

/** Records the outcome; an acknowledged message is re-keyed by its message_id. */
async function settle(s, record, change) {
  await s.exclusive(async () => {
    const map = s.messagesOf(record.conv);
    const updated = { ...record, ...change };
    const remove = [];
    if (change.message_id) {
      // Its `message` event (every device of the sender gets one) may have come first: one record, as the stream has it.
      const received = map.get(change.message_id);
      // Acknowledged: the files are the server's now, not kept here any more.
      updated.attachments = (record.attachments || []).map(({ file, ...kept }) => kept);
      if (received) {
        const { seq, sent_at: sentAt, text, edited_at: editedAt, deleted, attachments } = received;
        Object.assign(updated, { seq, sent_at: sentAt, text, edited_at: editedAt, deleted, attachments: attachments || [] });
      }
      updated.key = change.message_id;
      remove.push(record.key);
    }
    await s.persist({ messages: [updated], remove });
    if (change.state !== 'pending') (record.attachments || []).forEach((_, i) => s.progress.delete(`${record.key}:${i}`));
    map.delete(record.key);
    map.set(updated.key, updated);
    s.view.render(s);
  });
}

/**
 * The failed message's Retry button: pending again, at the end of the outbox,
 * under the same key. Files the server found not ready are uploaded again
 * (nothing was sent under the key, so other ids may go with it).
 */
export function retry(s, record) {
  if (record.state !== 'failed' || record.retryable === false) return;
  s.view.clearError(s, record.conv);
  const change = { state: 'pending', error: null, error_code: null };
  if (record.error_code === 'AttachmentNotReady') {
    change.attachments = (record.attachments || []).map((a) => (a.file instanceof Blob ? { ...a, attachment_id: null } : a));
  }
  settle(s, record, change).then(() => {
    s.outbox.push(s.messagesOf(record.conv).get(record.key));
    pump(s);
  });
}

/** A failed message's Discard button: it was never sent, and goes (its files too). */
export async function discard(s, record) {
  if (record.state !== 'failed' || record.message_id) return;
  await s.exclusive(async () => {
    const map = s.messagesOf(record.conv);
    if (!map.has(record.key)) return;
    await s.persist({ remove: [record.key] });
    map.delete(record.key);
  });
  s.view.clearError(s, record.conv);
  s.view.render(s);
}
