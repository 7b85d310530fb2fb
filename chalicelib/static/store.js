// What this browser keeps: the profiles (localStorage) and, per profile, its history and the
// names of the people in it (IndexedDB).

const PROFILES_KEY = 'messaging.profiles.v1';
const CURRENT_KEY = 'messaging.current.v1';

/**
 * The profiles in this browser and which one is signed in. A profile is
 * {user_id, user_name, handle, token, session_id, has_password}: token null
 * once this device was signed out (its history stays until it is forgotten,
 * and comes back when the account signs in here again); has_password
 * true, false or null (not known: a device signed in with a link code).
 */
export const profiles = {
  list() {
    try {
      const list = JSON.parse(localStorage.getItem(PROFILES_KEY) || '[]');
      // Profiles kept before handles existed have neither field: no handle, so no password either.
      return Array.isArray(list) ? list.filter((p) => p && p.user_id).map((p) => ({
        ...p, handle: p.handle ?? null, has_password: p.handle ? p.has_password ?? null : p.has_password ?? false,
      })) : [];
    } catch (_) { return []; }
  },

  save(list) { localStorage.setItem(PROFILES_KEY, JSON.stringify(list)); },

  get(userId) { return this.list().find((p) => p.user_id === userId) || null; },

  /** Kept first in the list, and signed in. */
  remember(profile) {
    this.save([profile, ...this.list().filter((p) => p.user_id !== profile.user_id)]);
    this.setCurrent(profile.user_id);
  },

  /** Changes some fields of a profile in place; the changed profile, or null. */
  update(userId, change) {
    let changed = null;
    this.save(this.list().map((p) => (p.user_id === userId ? (changed = { ...p, ...change }) : p)));
    return changed;
  },

  /** This device was signed out: nothing that needs the token is kept. */
  signedOut(userId) {
    this.update(userId, { token: null, session_id: null });
    if (localStorage.getItem(CURRENT_KEY) === userId) this.clearCurrent();
  },

  remove(userId) { this.save(this.list().filter((p) => p.user_id !== userId)); },

  /** The signed-in profile: only one that still has its token. */
  current() {
    const current = localStorage.getItem(CURRENT_KEY);
    return this.list().find((p) => p.user_id === current && p.token) || null;
  },

  setCurrent(userId) { localStorage.setItem(CURRENT_KEY, userId); },

  clearCurrent() { localStorage.removeItem(CURRENT_KEY); },
};

const request = (req) => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});
const finished = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
});
const dbName = (userId) => `messaging-${userId}`;

export const EMPTY = Object.freeze({ messages: [], conversations: [], people: [], cursor: 0, selected: null, stream: false });

/**
 * One database per profile: messages (by message_id, or pending:<key>),
 * conversations, people (by user_id: {user_name, handle, deleted,
 * fetched_at}, from /users) and meta (cursor, selected, and stream: the
 * cursor is /sync's; a cursor kept by /read_messages, which skipped this
 * account's own messages and other events, is read again from 0).
 */
export class Store {
  static async open(userId) {
    const req = indexedDB.open(dbName(userId), 2);
    req.onupgradeneeded = () => {
      const db = req.result;
      const has = (name) => db.objectStoreNames.contains(name);
      if (!has('messages')) db.createObjectStore('messages', { keyPath: 'key' }).createIndex('conv', 'conv');
      if (!has('conversations')) db.createObjectStore('conversations', { keyPath: 'id' });
      if (!has('meta')) db.createObjectStore('meta');
      if (!has('people')) db.createObjectStore('people', { keyPath: 'user_id' });   // version 2
    };
    const db = await new Promise((resolve, reject) => {
      let refused = false;
      req.onsuccess = () => { if (refused) req.result.close(); else resolve(req.result); };
      req.onerror = () => reject(req.error);
      // Another tab still holds the older version open: use memory now rather than wait for it.
      req.onblocked = () => { refused = true; reject(new Error('blocked by another tab')); };
    });
    db.onversionchange = () => db.close();   // a newer version in another tab is never held up by this one
    return new Store(db);
  }

  constructor(db) { this.db = db; }

  async load() {
    const tx = this.db.transaction(['messages', 'conversations', 'people', 'meta']);
    const [messages, conversations, people, cursor, selected, stream] = await Promise.all([
      request(tx.objectStore('messages').getAll()),
      request(tx.objectStore('conversations').getAll()),
      request(tx.objectStore('people').getAll()),
      request(tx.objectStore('meta').get('cursor')),
      request(tx.objectStore('meta').get('selected')),
      request(tx.objectStore('meta').get('stream')),
    ]);
    return { messages, conversations, people, cursor: cursor || 0, selected: selected || null, stream: Boolean(stream) };
  }

  /** One transaction, so the cursor never runs ahead of the messages it covers. */
  async write({ messages = [], remove = [], conversations = [], people = [], meta = {} }) {
    const tx = this.db.transaction(['messages', 'conversations', 'people', 'meta'], 'readwrite');
    const m = tx.objectStore('messages');
    for (const key of remove) m.delete(key);
    for (const record of messages) m.put(record);
    for (const conv of conversations) tx.objectStore('conversations').put(conv);
    for (const person of people) tx.objectStore('people').put(person);
    for (const [key, value] of Object.entries(meta)) tx.objectStore('meta').put(value, key);
    await finished(tx);
  }

  close() { this.db.close(); }
}

/** Where IndexedDB is refused (some private modes): history lives until the page closes. */
export class MemoryStore {
  async load() { return EMPTY; }
  async write() {}
  close() {}
}

/** Deletes a profile's history; resolves when it is gone (or when another tab holding it open delays that). */
export function deleteStore(userId) {
  return new Promise((resolve) => {
    let req;
    try { req = indexedDB.deleteDatabase(dbName(userId)); } catch (_) { resolve(); return; }   // nothing stored
    req.onsuccess = req.onerror = req.onblocked = () => resolve();
  });
}
