/* The stream's events applied to the session (docs/api.md, "The stream"):
 * messages in both directions (this account's own, from any device, too),
 * edits, deletions, read positions, receipts and memberships. And the read
 * state they feed: unread counts, marking a conversation read while it is
 * viewed, and the server's list of conversations at start.
 *
 * A conversation keeps: read_seq (this account's read position, a seq of its
 * stream), receipt_seq / receipt_at (how far the other person of a direct
 * chat has read this account's messages), counted_seq (the newest message the
 * server's unread count covered) and last_seq (its newest message).
 */

import * as api from './api.js';
import { parseTime, summary } from './helpers.js';
import { lookUp } from './people.js';

export const DELETED_TEXT = 'This message was deleted';

/** The conversation an event belongs to, or null. */
export function convIdOf(s, ev) {
  switch (ev.type) {
    case 'message': case 'edit': case 'delete':
      if (ev.kind === 'group') return ev.group_id ? `g:${ev.group_id}` : null;
      if (ev.sender_id === s.me) return ev.recipient_id ? `d:${ev.recipient_id}` : null;
      return `d:${ev.sender_id}`;
    case 'read': return ev.group_id ? `g:${ev.group_id}` : `d:${ev.with_user_id}`;
    case 'receipt': return `d:${ev.with_user_id}`;
    case 'member': return `g:${ev.group_id}`;
    default: return null;
  }
}

/** The outbox's message carries the files the event does (all uploaded, in order). */
function sameFiles(sending, ev) {
  const mine = (sending.attachments || []).map((a) => a.attachment_id);
  const theirs = (ev.attachments || []).map((a) => a.attachment_id);
  return mine.length === theirs.length && mine.every((id, i) => id && id === theirs[i]);
}

/** Messages from others after the read position, not deleted: what the unread count shows. */
export function countUnread(s, conv, after = 0) {
  const from = Math.max(conv.read_seq || 0, after);
  let n = 0;
  for (const r of s.messagesOf(conv.id).values()) {
    if (r.state === 'received' && !r.deleted && r.seq > from) n += 1;
  }
  return n;
}

/** Keeps the conversation's last line (the list shows it) when `r` is its newest message. */
function showLast(conv, r) {
  if (!r.seq || r.seq < (conv.last_seq || 0)) return;
  conv.last_seq = r.seq;
  conv.last_at = parseTime(r.sent_at) ?? conv.last_at;
  conv.last_text = r.deleted ? DELETED_TEXT : summary(r);
}

/**
 * Applies one event (its seq continues the cursor). `batch` collects what
 * changed: records, conversations, the messages to announce, the people to
 * name, and whether the server's counts are needed.
 */
export function applyEvent(s, ev, batch) {
  const convId = convIdOf(s, ev);
  if (!convId) return;
  const map = s.messagesOf(convId);
  const touch = (conv) => { batch.conversations.set(conv.id, conv); return conv; };
  const keep = (record) => { map.set(record.key, record); batch.records.set(record.key, record); return record; };

  if (ev.type === 'message') {
    const conv = touch(s.conversation(convId));
    const mine = ev.sender_id === s.me;
    let existing = map.get(ev.message_id);   // acknowledged by this device's outbox, or kept before the stream
    if (!existing && mine) {
      // The message the outbox is sending, its answer not here yet: the same message, not a second one.
      const sending = s.pumping && s.outbox.length ? map.get(s.outbox[0].key) : null;
      if (sending && !sending.message_id && sending.text === ev.text && sameFiles(sending, ev)) {
        existing = sending;
        map.delete(sending.key);
        batch.remove.push(sending.key);
      }
    }
    const record = keep({
      ...(existing || {}), key: ev.message_id, message_id: ev.message_id, seq: ev.seq, conv: convId,
      kind: ev.kind, sender_id: ev.sender_id, group_id: ev.group_id, text: ev.text, sent_at: ev.sent_at,
      edited_at: ev.edited_at || null, deleted: Boolean(ev.deleted), state: mine ? 'sent' : 'received', error: null,
      created: existing ? existing.created : Date.now(), attachments: ev.deleted ? [] : ev.attachments || [],
    });
    s.lastSentAt = ev.sent_at;
    showLast(conv, record);
    if (!mine && !existing && !record.deleted) {
      batch.people.add(ev.sender_id);
      batch.incoming.push(record);
      if (ev.seq > (conv.read_seq || 0) && ev.seq > (conv.counted_seq || 0)) conv.unread += 1;
    }
    return;
  }

  if (ev.type === 'edit' || ev.type === 'delete') {
    const record = map.get(ev.message_id);
    if (!record) return;   // not held here
    const conv = touch(s.conversation(convId));
    const erased = ev.type === 'delete' || ev.text === null || ev.text === undefined;
    if (erased && !record.deleted && record.state === 'received' && record.seq > (conv.read_seq || 0)) {
      conv.unread = Math.max(0, conv.unread - 1);
    }
    keep(Object.assign(record, erased
      ? { deleted: true, text: null, attachments: [] }   // a deleted message's files are deleted with it
      : { text: ev.text, edited_at: ev.edited_at || record.edited_at || null }));
    if (record.seq === conv.last_seq) showLast(conv, record);
    return;
  }

  if (ev.type === 'read') {
    const conv = touch(s.conversation(convId));
    const record = map.get(ev.message_id);
    if (!record || !record.seq) { batch.needCounts = true; return; }
    if (record.seq > (conv.read_seq || 0)) conv.read_seq = record.seq;
    conv.unread = countUnread(s, conv);
    return;
  }

  if (ev.type === 'receipt') {
    const conv = s.conversations.get(convId);
    const record = map.get(ev.message_id);
    if (!conv || !record) return;
    touch(conv);
    if (record.seq && record.seq > (conv.receipt_seq || 0)) conv.receipt_seq = record.seq;
    if (record.sent_at && (!conv.receipt_at || record.sent_at > conv.receipt_at)) conv.receipt_at = record.sent_at;
    return;
  }

  if (ev.type === 'member') {
    const conv = touch(s.conversation(convId, { last_at: Date.now() }));
    if (ev.group_name) conv.group_name = ev.group_name;
    if (ev.user_id === s.me) {
      conv.member = ev.member;
      conv.last_at = Math.max(conv.last_at || 0, Date.now());
    }
    batch.people.add(ev.user_id);
    batch.members.add(convId);
    keep({
      key: `member:${ev.seq}`, conv: convId, kind: 'member', seq: ev.seq, user_id: ev.user_id, member: ev.member,
      sent_at: s.lastSentAt || null, state: 'event', created: Date.now(),
    });
  }
}

/** A new, empty batch for applyEvent. */
export const newBatch = () => ({
  records: new Map(), remove: [], conversations: new Map(), incoming: [], people: new Set(), members: new Set(),
  needCounts: false,
});

/** The conversation open and the page visible: the person sees it. */
function viewing(s, conv) {
  return s.alive && conv && s.selected === conv.id && document.visibilityState === 'visible';
}

/**
 * While the open conversation is viewed: /mark_read up to its newest message
 * from others, only when that moves the read position forward.
 */
export function markSeen(s) {
  const conv = s.selected ? s.conversations.get(s.selected) : null;
  if (!viewing(s, conv)) return;
  let newest = null;
  for (const r of s.messagesOf(conv.id).values()) {
    if (r.state === 'received' && r.seq && (!newest || r.seq > newest.seq)) newest = r;
  }
  const changed = conv.unread !== 0;
  conv.unread = 0;
  if (newest && newest.seq > Math.max(conv.read_seq || 0, s.marking.get(conv.id) || 0)) {
    const seq = newest.seq;
    s.marking.set(conv.id, seq);
    const params = conv.kind === 'group' ? { group_id: conv.target } : { with_user_id: conv.target };
    api.markRead(s.auth, { ...params, message_id: newest.message_id }).catch(() => {
      // Asked again the next time the conversation is viewed.
      if (s.marking.get(conv.id) === seq) s.marking.delete(conv.id);
    });
  }
  if (changed) {
    s.persist({ conversations: [conv] });
    s.view.renderConversations(s);
  }
}

const CONVERSATION_PAGES = 10;

/**
 * The server's conversations: names, unread counts and read positions. A
 * count covers the messages up to the conversation's last_message; those
 * applied here after it are added.
 */
export async function refreshConversations(s) {
  const items = [];
  let before = null;
  for (let page = 0; page < CONVERSATION_PAGES; page += 1) {
    let answer;
    try {
      answer = await api.conversations(s.auth, before === null ? { limit: 100 } : { limit: 100, before });
    } catch (_) {
      return;   // the events keep the counts; asked again at the next start
    }
    items.push(...answer.conversations);
    if (answer.next_before === null || answer.next_before === undefined) break;
    before = answer.next_before;
  }
  if (!s.alive) return;
  await applyConversations(s, items);
  markSeen(s);
}

/** /conversations' items kept; answers the newest message's seq among them. */
function applyConversations(s, items, { meta = {}, partial = false } = {}) {
  return s.exclusive(async () => {
    if (!s.alive) return 0;
    const changed = [];
    let newest = 0;
    for (const item of items) {
      const id = `${item.kind === 'group' ? 'g' : 'd'}:${item.id}`;
      const last = item.last_message;
      const conv = s.conversation(id, { last_at: last ? parseTime(last.sent_at) ?? Date.now() : Date.now() });
      if (item.kind === 'group' && item.name) conv.group_name = item.name;
      if (item.read_up_to_seq && item.read_up_to_seq > (conv.read_seq || 0)) conv.read_seq = item.read_up_to_seq;
      const counted = last ? last.seq : 0;
      conv.unread = item.unread + countUnread(s, conv, counted);
      conv.counted_seq = Math.max(conv.counted_seq || 0, counted);
      if (last && !s.messagesOf(id).size) {
        conv.last_seq = last.seq;
        conv.last_text = last.deleted ? DELETED_TEXT : summary(last);
        newest = Math.max(newest, last.seq);
        if (partial) conv.history = { loaded: false, before: null };   // its messages come from /history
      }
      changed.push(conv);
    }
    if (meta.cursor !== undefined) meta.cursor = Math.max(meta.cursor, newest);
    await s.persist({ conversations: changed, meta });
    s.view.render(s);
    lookUp(s, changed.filter((c) => c.kind === 'direct').map((c) => c.target));
    return newest;
  });
}

/**
 * A new device (nothing kept) need not read the whole stream: the server's
 * conversations, and /sync from their newest message on; each conversation's
 * messages come from /history when it is opened. False when it could not
 * (the live loop then reads the stream from its start).
 */
export async function bootstrap(s) {
  let answer;
  try {
    answer = await api.conversations(s.auth, { limit: 100 });
  } catch (_) {
    return false;
  }
  if (!s.alive || s.cursor !== 0 || !answer.conversations.length) return false;
  const newest = await applyConversations(s, answer.conversations, { meta: { cursor: 0, stream: true }, partial: true });
  if (!newest) return false;
  await s.exclusive(async () => { if (s.cursor < newest) s.cursor = newest; });
  s.counted = true;   // these are the counts; the events from here on keep them
  if (answer.next_before !== null && answer.next_before !== undefined) refreshConversations(s);   // the older ones
  return true;
}

/** The open conversation's next older page from /history (newest first), when it has one to load. */
export async function loadHistory(s, conv) {
  const history = conv.history;
  if (!history || history.done || s.historyLoading.has(conv.id)) return;
  s.historyLoading.add(conv.id);
  try {
    const params = conv.kind === 'group' ? { group_id: conv.target } : { with_user_id: conv.target };
    if (history.before) params.before_seq = history.before;
    const answer = await api.history(s.auth, { ...params, limit: 50 });
    await s.exclusive(async () => {
      if (!s.alive) return;
      const map = s.messagesOf(conv.id);
      const records = [];
      for (const ev of answer.messages) {
        if (map.has(ev.message_id)) continue;   // the stream's is as new or newer
        const record = {
          key: ev.message_id, message_id: ev.message_id, seq: ev.seq, conv: conv.id, kind: ev.kind,
          sender_id: ev.sender_id, group_id: ev.group_id, text: ev.text, sent_at: ev.sent_at,
          edited_at: ev.edited_at || null, deleted: Boolean(ev.deleted),
          state: ev.sender_id === s.me ? 'sent' : 'received', error: null, created: Date.now(),
          attachments: ev.deleted ? [] : ev.attachments || [],
        };
        map.set(record.key, record);
        records.push(record);
      }
      const next = answer.next_before_seq;
      conv.history = { loaded: true, before: next, done: next === null || next === undefined };
      await s.persist({ messages: records, conversations: [conv] });
      s.view.render(s);
      lookUp(s, new Set(records.map((r) => r.sender_id)));
    });
    markSeen(s);   // the messages it brought are seen, if it is open
  } catch (err) {
    if (s.alive) s.view.showError(s, conv.id, `Cannot load earlier messages: ${api.describe(err)}`);
  } finally {
    s.historyLoading.delete(conv.id);
  }
}
