// What this browser keeps: the profiles (localStorage) and, per profile, its history (IndexedDB).

const PROFILES_KEY = 'messaging.profiles.v1';
const CURRENT_KEY = 'messaging.current.v1';

/** The profiles in this browser (each with its token) and which one is signed in. */
export const profiles = {
  list() {
    try {
      const list = JSON.parse(localStorage.getItem(PROFILES_KEY) || '[]');
      return Array.isArray(list) ? list.filter((p) => p && p.user_id && p.token) : [];
    } catch (_) { return []; }
  },

  save(list) { localStorage.setItem(PROFILES_KEY, JSON.stringify(list)); },

  /** Kept first in the list, and signed in. */
  remember(profile) {
    this.save([profile, ...this.list().filter((p) => p.user_id !== profile.user_id)]);
    this.setCurrent(profile.user_id);
  },

  remove(userId) { this.save(this.list().filter((p) => p.user_id !== userId)); },

  current() {
    const current = localStorage.getItem(CURRENT_KEY);
    return this.list().find((p) => p.user_id === current) || null;
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

export const EMPTY = Object.freeze({ messages: [], conversations: [], cursor: 0, selected: null });

/** One database per profile: messages (by message_id, or pending:<key>), conversations, and meta (cursor). */
export class Store {
  static async open(userId) {
    const req = indexedDB.open(dbName(userId), 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore('messages', { keyPath: 'key' }).createIndex('conv', 'conv');
      db.createObjectStore('conversations', { keyPath: 'id' });
      db.createObjectStore('meta');
    };
    return new Store(await request(req));
  }

  constructor(db) { this.db = db; }

  async load() {
    const tx = this.db.transaction(['messages', 'conversations', 'meta']);
    const [messages, conversations, cursor, selected] = await Promise.all([
      request(tx.objectStore('messages').getAll()),
      request(tx.objectStore('conversations').getAll()),
      request(tx.objectStore('meta').get('cursor')),
      request(tx.objectStore('meta').get('selected')),
    ]);
    return { messages, conversations, cursor: cursor || 0, selected: selected || null };
  }

  /** One transaction, so the cursor never runs ahead of the messages it covers. */
  async write({ messages = [], remove = [], conversations = [], meta = {} }) {
    const tx = this.db.transaction(['messages', 'conversations', 'meta'], 'readwrite');
    const m = tx.objectStore('messages');
    for (const key of remove) m.delete(key);
    for (const record of messages) m.put(record);
    for (const conv of conversations) tx.objectStore('conversations').put(conv);
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
