// The signed-in profile's state: its conversations, messages, cursor, outbox and the people it knows, and its store.

import { shortId } from './helpers.js';

export class Session {
  /** `saved` is what the store held; `onUnauthorized(session, err)` runs when the server refuses the token (api.js). */
  constructor(profile, store, saved, view, onUnauthorized) {
    this.profile = profile;
    this.store = store;
    this.view = view;
    this.onUnauthorized = onUnauthorized;
    this.abort = new AbortController();   // aborted when the session ends: every loop stops
    this.ws = null;
    this.cursor = saved.cursor;           // the last seq applied, always contiguous
    this.conversations = new Map();
    this.messages = new Map();            // conversation id -> (key -> record)
    this.selected = null;
    this.outbox = [];
    this.pumping = false;
    this.catching = null;
    this.catchAgain = false;
    this.lock = Promise.resolve();
    this.runs = 0;                        // the live loop's generation: a newer one ends the older
    this.halted = null;                   // the error that stopped the live loop, until Reconnect
    this.errors = new Map();              // conversation id -> {text, key, error}: shown near the composer
    this.people = new Map();              // user id -> {user_id, user_name, handle, deleted, fetched_at} (people.js)
    this.looking = null;                  // people.js: the ids waiting for one /users call
    this.asking = new Set();              // people.js: the ids in a /users call now
    this.onPeople = () => {};             // the controller's: names changed
    this.leaving = false;                 // signing itself out (account.js): a 401 meanwhile is expected
    this.marking = new Map();             // conversation id -> the seq a /mark_read was sent for (events.js)
    this.counted = false;                 // the server's conversations were asked for once caught up
    this.historyLoading = new Set();      // conversation ids with a /history call out (events.js)
    this.progress = new Map();            // 'record key:file index' -> fraction uploaded (null: started), outbox.js
    this.lastSentAt = null;               // the newest message's time: where a membership line sorts
    if (!saved.stream) this.cursor = 0;   // kept by /read_messages: the stream is read from its start
    for (const person of saved.people || []) this.people.set(person.user_id, person);
    for (const conv of saved.conversations) this.conversations.set(conv.id, conv);
    for (const record of saved.messages) this.messagesOf(record.conv).set(record.key, record);
  }

  get me() { return this.profile.user_id; }

  get alive() { return !this.abort.signal.aborted; }

  /** What every call of this session carries: a 401 on any of them signs this device out (api.js). */
  get auth() {
    const onUnauthorized = (err) => this.onUnauthorized(this, err);
    return { token: this.profile.token, signal: this.abort.signal, onUnauthorized };
  }

  stop() {
    this.abort.abort();
    if (this.ws) { try { this.ws.close(); } catch (_) { /* already closed */ } }
    this.store.close();
  }

  /** Serializes changes to the cursor and the stores. */
  exclusive(fn) {
    const next = this.lock.then(fn);
    this.lock = next.catch(() => {});
    return next;
  }

  messagesOf(convId) {
    let map = this.messages.get(convId);
    if (!map) { map = new Map(); this.messages.set(convId, map); }
    return map;
  }

  conversation(id, defaults) {
    let conv = this.conversations.get(id);
    if (!conv) {
      conv = {
        id, kind: id.startsWith('g:') ? 'group' : 'direct', target: id.slice(2), name: null, group_name: null,
        unread: 0, last_at: Date.now(), last_text: '', last_seq: 0, blocked: false,
        member: id.startsWith('g:') ? true : null, read_seq: 0, counted_seq: 0, receipt_seq: 0, receipt_at: null,
        ...defaults,
      };
      this.conversations.set(id, conv);
    }
    return conv;
  }

  async persist(change) {
    if (!this.alive) return;
    try { await this.store.write(change); } catch (_) {
      this.view.status('sidebar', 'Could not save to this browser\'s storage (full?): new messages may be read again after a reload.', true);
    }
  }

  markMembership(convId, member) {
    const conv = this.conversations.get(convId);
    if (!conv || conv.member === member) return;
    conv.member = member;
    this.persist({ conversations: [conv] });
    this.view.render(this);
  }

  /**
   * A person's name: the nickname given here, if any; else the name from
   * /users; "Deleted account" when /users left them out; "User 6f0c…" only
   * until the first answer.
   */
  personName(userId, nickname) {
    if (nickname) return nickname;
    const person = this.people.get(userId);
    if (person && person.deleted) return 'Deleted account';
    if (person && person.user_name) return person.user_name;
    return `User ${shortId(userId)}`;
  }

  /** "@handle", when the server gave one. */
  handleOf(userId) {
    const person = this.people.get(userId);
    return person && !person.deleted && person.handle ? `@${person.handle}` : '';
  }

  displayName(conv) {
    if (conv.kind === 'direct' && conv.target === this.me) return 'Notes to self';
    if (conv.kind === 'direct') return this.personName(conv.target, conv.name);
    return conv.name || conv.group_name || `Group ${shortId(conv.target)}`;
  }

  senderName(record) {
    if (record.sender_id === this.me) return 'You';
    const direct = this.conversations.get(`d:${record.sender_id}`);
    return this.personName(record.sender_id, direct && direct.name);
  }
}
