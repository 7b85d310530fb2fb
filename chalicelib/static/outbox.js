/* Sending: each message is stored with its own idempotency key before it
 * goes out, then sent one at a time, in order, under that key until the
 * server acknowledges it. An answer the contract allows to retry (see
 * api.js) is retried after Retry-After or a back-off; any other marks the
 * message failed, and the person has its Retry button.
 */

import { describe, send } from './api.js';
import { backoff, newKey, sleep } from './helpers.js';

export async function queueSend(s, conv, text) {
  const key = newKey();
  const record = {
    key: `pending:${key}`, client_message_id: key, conv: conv.id, kind: conv.kind, to: conv.target,
    sender_id: s.me, group_id: conv.kind === 'group' ? conv.target : null, text, created: Date.now(),
    sent_at: null, state: 'pending',
  };
  conv.last_at = Date.now();
  conv.last_text = text;
  // Stored with its key before it is sent: a reload mid-send retries under the same key.
  await s.persist({ messages: [record], conversations: [conv] });
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

async function deliver(s, record) {
  const params = record.kind === 'group'
    ? { sending_user_id: s.me, group_id: record.to, message_text: record.text }
    : { sending_user_id: s.me, receiving_user_id: record.to, message_text: record.text };
  let attempt = 0;
  while (s.alive) {
    try {
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
        s.view.showError(s, record.conv, describe(err, wait), record.client_message_id);
        await sleep(wait, s.abort.signal);
        continue;
      }
      await settle(s, record, { state: 'failed', error: describe(err) });
      s.view.showError(s, record.conv, describe(err), record.client_message_id);
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
      if (received) {
        const { seq, sent_at: sentAt, text, edited_at: editedAt, deleted } = received;
        Object.assign(updated, { seq, sent_at: sentAt, text, edited_at: editedAt, deleted });
      }
      updated.key = change.message_id;
      remove.push(record.key);
    }
    await s.persist({ messages: [updated], remove });
    map.delete(record.key);
    map.set(updated.key, updated);
    s.view.render(s);
  });
}

/** The failed message's Retry button: pending again, at the end of the outbox, under the same key. */
export function retry(s, record) {
  if (record.state !== 'failed') return;
  s.view.clearError(s, record.conv);
  settle(s, record, { state: 'pending', error: null }).then(() => {
    s.outbox.push(s.messagesOf(record.conv).get(record.key));
    pump(s);
  });
}
