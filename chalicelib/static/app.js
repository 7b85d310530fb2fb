/* The web chat client: plain DOM, no framework, no build step.
 *
 * The server's cursor is the only truth. Everything received is kept in
 * IndexedDB with the cursor (the last seq applied, always contiguous), so a
 * reload shows the history and reads on from there. WebSocket frames and
 * long-polls only say "read sooner"; a frame whose seq is not cursor+1 sends
 * us back to a cursor read. Text from the server or the user only ever
 * reaches the page through textContent.
 */
'use strict';

(() => {
  const PROFILES_KEY = 'messaging.profiles.v1';
  const CURRENT_KEY = 'messaging.current.v1';
  const MAX_TEXT_CHARS = 4096;           // code points, as the server counts
  const LONG_POLL_SECONDS = 20;
  const BACKOFF_CAP_MS = 30000;
  const PING_EVERY_MS = 4 * 60 * 1000;   // API Gateway drops a socket idle for 10 minutes
  const SAFETY_READ_MS = 60 * 1000;      // a lost last frame has no later gap to reveal it
  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  const $ = (id) => document.getElementById(id);

  /** An element with properties and children; strings become text nodes, never markup. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name.startsWith('data-') || name.startsWith('aria-') || name === 'role') node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
    return node;
  }

  /** crypto.randomUUID needs a secure context; `make run HOST=0.0.0.0` over plain http is not one. */
  function newKey() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const shortId = (id) => String(id).slice(0, 8);
  const seconds = (ms) => Math.max(1, Math.ceil(ms / 1000));

  /** Exponential, capped, with jitter so many clients do not come back at once. */
  function backoff(attempt) {
    const ceiling = Math.min(BACKOFF_CAP_MS, 1000 * 2 ** Math.min(attempt, 10));
    return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
  }

  // Sleepers wake early when the browser comes back online (and on sign-out).
  const wakeups = new EventTarget();
  function sleep(ms, session) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakeups.removeEventListener('wake', done);
        if (session) session.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakeups.addEventListener('wake', done);
      if (session) session.abort.signal.addEventListener('abort', done);
    });
  }

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, code, message, retryAfterMs, body) {
      super(message);
      this.status = status;            // 0: no answer (offline, server down)
      this.code = code;
      this.retryAfterMs = retryAfterMs;
      this.body = body;
    }

    /** Worth retrying with the same idempotency key. */
    get retryable() { return this.status === 0 || this.status === 429 || this.status === 503; }
  }

  function retryAfterMs(header) {
    if (!header) return null;
    const s = Number(header);
    if (Number.isFinite(s)) return Math.max(0, s * 1000);
    const when = Date.parse(header);
    return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
  }

  /** POST a JSON body; the answer's JSON, or an ApiError carrying the envelope's Code. */
  async function call(path, params, { token, key, signal } = {}) {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (key) headers['Idempotency-Key'] = key;
    let response;
    try {
      // Relative, so a deployed stage prefix (…/api/) is kept.
      response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(params), signal, cache: 'no-store' });
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'Offline', 'offline, or the server cannot be reached', null, null);
    }
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON: a proxy's error page */ }
    if (response.ok) return body;
    const code = body && typeof body.Code === 'string' ? body.Code : `HTTP${response.status}`;
    const message = body && typeof body.Message === 'string' ? body.Message : response.statusText;
    throw new ApiError(response.status, code, message, retryAfterMs(response.headers.get('Retry-After')), body);
  }

  /** What a person should read for an error, `waitMs` being when it is retried (if it is). */
  function describe(err, waitMs) {
    const retry = waitMs != null ? ` Trying again in ${seconds(waitMs)} s; the message is kept.` : '';
    switch (err.code) {
      case 'Blocked': return 'Not delivered: this person has blocked you.';
      case 'NotAMember': return 'Not delivered: you are not a member of this group. Join it again to send.';
      case 'RateLimited': return `Too many requests: the server asks to wait ${seconds(waitMs ?? err.retryAfterMs ?? 1000)} s.${waitMs != null ? ' The message is kept and sent then.' : ''}`;
      case 'UserNotFound': return 'No user has this id. Check the id that was pasted.';
      case 'GroupNotFound': return 'No group has this id. Check the id that was pasted.';
      case 'Unauthorized': return 'Your sign-in is no longer valid. Sign in again.';
      case 'Forbidden': return 'The server refused: this profile may not do that.';
      case 'ServiceUnavailable': return `The server is unavailable right now.${retry}`;
      case 'Offline': return `You are offline, or the server cannot be reached.${retry}`;
      case 'GroupFull': return 'This group is full.';
      case 'IdempotencyConflict': return 'The server already has a different message under this key; not sent.';
      default: return `${err.message || err.code}${retry}`;
    }
  }

  // ------------------------------------------------------------------ profiles (localStorage)

  function loadProfiles() {
    try {
      const list = JSON.parse(localStorage.getItem(PROFILES_KEY) || '[]');
      return Array.isArray(list) ? list.filter((p) => p && p.user_id && p.token) : [];
    } catch (_) { return []; }
  }

  function saveProfiles(list) { localStorage.setItem(PROFILES_KEY, JSON.stringify(list)); }

  function rememberProfile(profile) {
    saveProfiles([profile, ...loadProfiles().filter((p) => p.user_id !== profile.user_id)]);
    localStorage.setItem(CURRENT_KEY, profile.user_id);
  }

  // ------------------------------------------------------------------ storage (IndexedDB)

  const request = (req) => new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const finished = (tx) => new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
  const dbName = (userId) => `messaging-${userId}`;

  /** One database per profile: messages (by message_id, or pending:<key>), conversations, and meta (cursor). */
  class Store {
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
  class MemoryStore {
    async load() { return { messages: [], conversations: [], cursor: 0, selected: null }; }
    async write() {}
    close() {}
  }

  // ------------------------------------------------------------------ the signed-in session

  let session = null;   // the one live session; every loop stops when it is replaced

  function alive(s) { return s === session && !s.abort.signal.aborted; }

  async function startSession(profile) {
    stopSession();
    let store;
    let storageWarning = '';
    try { store = await Store.open(profile.user_id); } catch (_) {
      store = new MemoryStore();
      storageWarning = 'This browser refuses to store data: the history is kept only until the page is closed.';
    }
    const saved = await store.load().catch(() => ({ messages: [], conversations: [], cursor: 0, selected: null }));
    const s = {
      profile, store, abort: new AbortController(), ws: null,
      cursor: saved.cursor, conversations: new Map(), messages: new Map(), selected: null,
      outbox: [], pumping: false, catching: null, catchAgain: false, lock: Promise.resolve(),
      errors: new Map(),   // conversation id -> {text, key, error}: shown near the composer
    };
    for (const conv of saved.conversations) s.conversations.set(conv.id, conv);
    for (const record of saved.messages) messagesOf(s, record.conv).set(record.key, record);
    session = s;
    showApp(s);
    if (saved.selected && s.conversations.has(saved.selected)) select(s, saved.selected, { focus: false });
    else render(s);
    if (storageWarning) setStatus($('sidebar-status'), storageWarning, true);
    // Sends stored as pending before a reload go out again under their own keys.
    const pending = [...s.messages.values()].flatMap((m) => [...m.values()]).filter((r) => r.state === 'pending');
    pending.sort((a, b) => a.created - b.created);
    s.outbox.push(...pending);
    pumpOutbox(s);
    liveLoop(s);
  }

  function stopSession() {
    const s = session;
    if (!s) return;
    session = null;
    s.abort.abort();
    if (s.ws) { try { s.ws.close(); } catch (_) { /* already closed */ } }
    s.store.close();
  }

  /** Serializes changes to the cursor and the stores. */
  function exclusive(s, fn) {
    const next = s.lock.then(fn);
    s.lock = next.catch(() => {});
    return next;
  }

  function messagesOf(s, convId) {
    let map = s.messages.get(convId);
    if (!map) { map = new Map(); s.messages.set(convId, map); }
    return map;
  }

  const me = (s) => s.profile.user_id;

  function conversation(s, id, defaults) {
    let conv = s.conversations.get(id);
    if (!conv) {
      conv = {
        id, kind: id.startsWith('g:') ? 'group' : 'direct', target: id.slice(2), name: null, unread: 0,
        last_at: Date.now(), last_text: '', blocked: false, member: id.startsWith('g:') ? true : null, ...defaults,
      };
      s.conversations.set(id, conv);
    }
    return conv;
  }

  async function persist(s, change) {
    if (!alive(s)) return;
    try { await s.store.write(change); } catch (_) {
      setStatus($('sidebar-status'), 'Could not save to this browser\'s storage (full?): new messages may be read again after a reload.', true);
    }
  }

  // ------------------------------------------------------------------ receiving

  /**
   * Applies the items that continue the cursor (seq = cursor+1, +2, …), drops
   * the ones already held. Answers true when an item beyond a gap was left
   * over, so the caller reads with the cursor.
   */
  function applyItems(s, items) {
    return exclusive(s, async () => {
      if (!alive(s)) return false;
      let cursor = s.cursor;
      const fresh = [];
      let gap = false;
      for (const item of items) {
        if (item.seq <= cursor) continue;
        if (item.seq !== cursor + 1) { gap = true; break; }
        fresh.push(item);
        cursor = item.seq;
      }
      if (!fresh.length) return gap;
      const records = [];
      const touched = new Map();
      for (const item of fresh) {
        const mine = item.sender_id === me(s);
        const convId = item.kind === 'group' ? `g:${item.group_id}` : `d:${item.sender_id}`;
        const conv = conversation(s, convId);
        const existing = messagesOf(s, convId).get(item.message_id);  // a note to self, already acknowledged
        const record = {
          ...(existing || {}), key: item.message_id, message_id: item.message_id, seq: item.seq, conv: convId,
          kind: item.kind, sender_id: item.sender_id, group_id: item.group_id, text: item.text,
          sent_at: item.sent_at, state: mine ? 'sent' : 'received', created: existing ? existing.created : Date.now(),
        };
        records.push(record);
        conv.last_at = Date.parse(item.sent_at) || Date.now();
        conv.last_text = item.text;
        if (!mine && convId !== s.selected) conv.unread += 1;
        touched.set(convId, conv);
      }
      await persist(s, { messages: records, conversations: [...touched.values()], meta: { cursor } });
      s.cursor = cursor;
      for (const record of records) messagesOf(s, record.conv).set(record.key, record);
      announceIncoming(s, records.filter((r) => r.state === 'received'));
      render(s);
      return gap;
    });
  }

  /** Cursor reads until has_more is false; `wait` long-polls the first one. */
  async function readPages(s, wait) {
    for (;;) {
      let page;
      try {
        page = await call('read_messages', { user_id: me(s), after: s.cursor, limit: 200, wait },
          { token: s.profile.token, signal: s.abort.signal });
      } catch (err) {
        if (err.code === 'CursorAhead' && err.body && Number.isInteger(err.body.newest_seq)) {
          // The server's history is shorter than ours (its database was reset): read on from its end.
          await exclusive(s, async () => {
            s.cursor = err.body.newest_seq;
            await persist(s, { meta: { cursor: s.cursor } });
          });
          setStatus($('sidebar-status'), 'The server has fewer messages than this browser remembers; reading on from its newest.', true);
          continue;
        }
        throw err;
      }
      const gap = await applyItems(s, page.messages);
      if (!page.has_more && !gap) return;
      wait = 0;
    }
  }

  /**
   * After a failed read or ticket: false when the loop should end (signed
   * out, or the token is refused), else shows the error and waits out the back-off.
   */
  async function waitOut(s, err, attempt, prefix = '') {
    if (!alive(s) || (err && err.name === 'AbortError')) return false;
    if (err.code === 'Unauthorized') { unauthorized(s); return false; }
    const wait = err.retryAfterMs ?? backoff(attempt);
    setConnection(s, 'offline', `${prefix}${describe(err, wait)}`);
    await sleep(wait, s);
    return true;
  }

  /** A cursor read now, retried until it succeeds; concurrent calls share one. */
  function catchUp(s) {
    if (s.catching) { s.catchAgain = true; return s.catching; }
    s.catching = (async () => {
      let attempt = 0;
      do {
        s.catchAgain = false;
        try {
          await readPages(s, 0);
          attempt = 0;
        } catch (err) {
          if (!await waitOut(s, err, attempt++, 'Cannot read new messages: ')) break;
          s.catchAgain = true;
        }
      } while (s.catchAgain && alive(s));
      s.catching = null;
    })();
    return s.catching;
  }

  /**
   * WebSocket when the server offers one, else (url null, or a socket that
   * cannot be opened, e.g. a 503 when pushes cannot be registered) long-poll.
   */
  async function liveLoop(s) {
    await catchUp(s);
    let failures = 0;
    while (alive(s)) {
      let ticket;
      try {
        ticket = await call('connect_ticket', { user_id: me(s) }, { token: s.profile.token, signal: s.abort.signal });
      } catch (err) {
        if (!await waitOut(s, err, failures++)) return;
        continue;
      }
      if (!ticket.url) {
        await longPoll(s, Infinity);       // this server has no WebSocket at all
        continue;
      }
      const outcome = await runSocket(s, ticket);
      if (!alive(s)) return;
      if (!outcome.opened) {
        // Refused or unreachable: long-poll for a while, then offer the socket another chance.
        failures += 1;
        await longPoll(s, Math.min(5, failures) * 60 * 1000);
      } else {
        failures = outcome.stable ? 0 : failures + 1;
        const wait = backoff(failures);
        setConnection(s, 'connecting', `Live connection lost; reconnecting in ${seconds(wait)} s.`);
        await sleep(wait, s);
      }
    }
  }

  /** Resolves when the socket closes: {opened, stable}. */
  function runSocket(s, ticket) {
    return new Promise((resolve) => {
      const sep = ticket.url.includes('?') ? '&' : '?';
      let ws;
      try { ws = new WebSocket(`${ticket.url}${sep}ticket=${encodeURIComponent(ticket.ticket)}`); } catch (_) {
        resolve({ opened: false, stable: false });
        return;
      }
      s.ws = ws;
      let opened = false;
      let openedAt = 0;
      let ping = null;
      let safety = null;
      ws.onopen = () => {
        opened = true;
        openedAt = Date.now();
        setConnection(s, 'live', 'Live (WebSocket)');
        catchUp(s);   // whatever arrived while we were not connected
        ping = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send('{"action":"ping"}'); }, PING_EVERY_MS);
        safety = setInterval(() => catchUp(s), SAFETY_READ_MS);
      };
      ws.onmessage = (event) => {
        let frame;
        try { frame = JSON.parse(event.data); } catch (_) { return; }
        if (!frame || frame.type !== 'message' || !frame.message || !Number.isInteger(frame.message.seq)) return;
        applyItems(s, [frame.message]).then((gap) => { if (gap) catchUp(s); });
      };
      ws.onerror = () => { /* onclose follows and decides */ };
      ws.onclose = () => {
        clearInterval(ping);
        clearInterval(safety);
        if (s.ws === ws) s.ws = null;
        resolve({ opened, stable: opened && Date.now() - openedAt > 30000 });
      };
      // A sign-out closes it too.
      s.abort.signal.addEventListener('abort', () => ws.close(), { once: true });
    });
  }

  async function longPoll(s, durationMs) {
    const until = Date.now() + durationMs;
    let attempt = 0;
    setConnection(s, 'live', 'Live (long-poll)');
    await catchUp(s);
    while (alive(s) && Date.now() < until) {
      try {
        await readPages(s, LONG_POLL_SECONDS);
        if (attempt) setConnection(s, 'live', 'Live (long-poll)');
        attempt = 0;
      } catch (err) {
        if (!await waitOut(s, err, attempt++)) return;
      }
    }
  }

  // ------------------------------------------------------------------ sending

  function codePoints(text) { return Array.from(text).length; }

  async function queueSend(s, conv, text) {
    const key = newKey();
    const record = {
      key: `pending:${key}`, client_message_id: key, conv: conv.id, kind: conv.kind, to: conv.target,
      sender_id: me(s), group_id: conv.kind === 'group' ? conv.target : null, text, created: Date.now(),
      sent_at: null, state: 'pending',
    };
    conv.last_at = Date.now();
    conv.last_text = text;
    // Stored with its key before it is sent: a reload mid-send retries under the same key.
    await persist(s, { messages: [record], conversations: [conv] });
    messagesOf(s, conv.id).set(record.key, record);
    render(s);
    s.outbox.push(record);
    pumpOutbox(s);
  }

  /** One message at a time, in order; a retrying one holds the later ones back. */
  async function pumpOutbox(s) {
    if (s.pumping) return;
    s.pumping = true;
    try {
      while (alive(s) && s.outbox.length) {
        await deliver(s, s.outbox[0]);
        s.outbox.shift();
      }
    } finally { s.pumping = false; }
  }

  async function deliver(s, record) {
    const params = record.kind === 'group'
      ? { sending_user_id: me(s), group_id: record.to, message_text: record.text }
      : { sending_user_id: me(s), receiving_user_id: record.to, message_text: record.text };
    let attempt = 0;
    while (alive(s)) {
      try {
        const answer = await call(record.kind === 'group' ? 'send_group' : 'send', params,
          { token: s.profile.token, key: record.client_message_id, signal: s.abort.signal });
        await settle(s, record, { state: 'sent', message_id: answer.message_id, sent_at: answer.sent_at, error: null });
        const shown = s.errors.get(record.conv);
        if (shown && shown.key === record.client_message_id) clearError(s, record.conv);
        return;
      } catch (err) {
        if (!alive(s) || err.name === 'AbortError') return;
        if (err.code === 'Unauthorized') { unauthorized(s); return; }   // stays pending
        if (err.retryable) {
          const wait = err.retryAfterMs ?? backoff(attempt);
          attempt += 1;
          showError(s, record.conv, describe(err, wait), record.client_message_id);
          await sleep(wait, s);
          continue;
        }
        await settle(s, record, { state: 'failed', error: describe(err) });
        showError(s, record.conv, describe(err), record.client_message_id);
        if (err.code === 'NotAMember') markMembership(s, record.conv, false);
        return;
      }
    }
  }

  /** Records the outcome; an acknowledged message is re-keyed by its message_id. */
  async function settle(s, record, change) {
    await exclusive(s, async () => {
      const map = messagesOf(s, record.conv);
      const updated = { ...record, ...change };
      const remove = [];
      if (change.message_id) {
        const received = map.get(change.message_id);   // a note to self that came back first
        if (received) Object.assign(updated, { seq: received.seq, sent_at: received.sent_at });
        updated.key = change.message_id;
        remove.push(record.key);
      }
      await persist(s, { messages: [updated], remove });
      map.delete(record.key);
      map.set(updated.key, updated);
      render(s);
    });
  }

  function retry(s, record) {
    if (record.state !== 'failed') return;
    clearError(s, record.conv);
    settle(s, record, { state: 'pending', error: null }).then(() => {
      s.outbox.push(messagesOf(s, record.conv).get(record.key));
      pumpOutbox(s);
    });
  }

  // ------------------------------------------------------------------ conversations

  function select(s, id, { focus = true } = {}) {
    const conv = s.conversations.get(id);
    if (!conv) return;
    s.selected = id;
    const change = { meta: { selected: id } };
    if (conv.unread) { conv.unread = 0; change.conversations = [conv]; }
    persist(s, change);
    $('layout').classList.add('collapsed');   // on narrow screens the chat takes the room
    render(s);
    if (focus) $('composer-text').focus();
  }

  function startDirect(s, userId, name) {
    const conv = conversation(s, `d:${userId.toLowerCase()}`, { last_at: Date.now() });
    if (name) conv.name = name;
    persist(s, { conversations: [conv] });
    select(s, conv.id);
  }

  async function setMembership(s, groupId, join, name) {
    const answer = await call('update_group', { user_id: me(s), group_id: groupId, to_be_added: join ? 1 : 0 },
      { token: s.profile.token, signal: s.abort.signal });
    const conv = conversation(s, `g:${groupId.toLowerCase()}`, { last_at: Date.now() });
    if (name) conv.name = name;
    conv.member = answer.member;
    await persist(s, { conversations: [conv] });
    return conv;
  }

  function markMembership(s, convId, member) {
    const conv = s.conversations.get(convId);
    if (!conv || conv.member === member) return;
    conv.member = member;
    persist(s, { conversations: [conv] });
    render(s);
  }

  function displayName(s, conv) {
    if (conv.kind === 'direct' && conv.target === me(s)) return 'Notes to self';
    if (conv.name) return conv.name;
    return conv.kind === 'group' ? `Group ${shortId(conv.target)}` : `User ${shortId(conv.target)}`;
  }

  function senderName(s, record) {
    if (record.sender_id === me(s)) return 'You';
    const direct = s.conversations.get(`d:${record.sender_id}`);
    return direct && direct.name ? direct.name : `User ${shortId(record.sender_id)}`;
  }

  // ------------------------------------------------------------------ rendering

  function setStatus(node, text, isError) {
    node.textContent = text || '';
    node.classList.toggle('error', Boolean(text) && Boolean(isError));
  }

  function showError(s, convId, text, key) {
    s.errors.set(convId, { text, key, error: true });
    if (convId === s.selected) renderComposerStatus(s);
  }

  /** The outcome of an action, where an error would be, without an error's look. */
  function showNote(s, convId, text) {
    s.errors.set(convId, { text, key: null, error: false });
    if (convId === s.selected) renderComposerStatus(s);
  }

  function clearError(s, convId) {
    s.errors.delete(convId);
    if (convId === s.selected) renderComposerStatus(s);
  }

  function renderComposerStatus(s) {
    const shown = s.errors.get(s.selected);
    setStatus($('composer-status'), shown ? shown.text : '', Boolean(shown && shown.error));
  }

  function setConnection(s, state, text) {
    if (!alive(s)) return;
    const node = $('conn-status');
    if (node.dataset.state !== state || node.textContent !== text) {
      if (node.dataset.state !== state) announce(text);
      node.dataset.state = state;
      node.textContent = text;
    }
  }

  function announce(text) {
    const node = $('announcer');
    node.textContent = '';
    // A fresh text node in a polite live region is read out once.
    requestAnimationFrame(() => { node.textContent = text; });
  }

  function announceIncoming(s, records) {
    if (!records.length) return;
    if (records.length > 3) { announce(`${records.length} new messages.`); return; }
    const clip = (t) => (t.length > 140 ? `${t.slice(0, 140)}…` : t);
    announce(records.map((r) => {
      const conv = s.conversations.get(r.conv);
      const where = conv.kind === 'group' ? ` in ${displayName(s, conv)}` : '';
      return `New message from ${senderName(s, r)}${where}: ${clip(r.text)}`;
    }).join(' '));
  }

  function render(s) {
    if (!alive(s)) return;
    renderConversations(s);
    renderChat(s);
  }

  function renderConversations(s) {
    const list = $('conversation-list');
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.conv : null;
    const convs = [...s.conversations.values()].sort((a, b) => b.last_at - a.last_at);
    const items = convs.map((conv) => {
      const name = displayName(s, conv);
      const unread = conv.unread > 0 ? el('span', { class: 'unread', 'aria-hidden': 'true', text: String(conv.unread) }) : null;
      const label = `${conv.kind === 'group' ? 'Group' : 'Direct'}: ${name}${conv.unread ? `, ${conv.unread} unread` : ''}`;
      return el('li', null, el('button', {
        type: 'button', class: 'conv', 'data-conv': conv.id, 'data-unread': String(conv.unread),
        'aria-current': conv.id === s.selected ? 'true' : null, 'aria-label': label,
        onclick: () => select(s, conv.id),
      },
      el('span', { class: `kind kind-${conv.kind}`, 'aria-hidden': 'true', text: conv.kind === 'group' ? '#' : '@' }),
      el('span', { class: 'conv-text' },
        el('span', { class: 'conv-name', text: name }),
        el('span', { class: 'conv-last', text: conv.last_text || (conv.kind === 'group' ? 'No messages yet' : 'Say hello') })),
      unread));
    });
    list.replaceChildren(...items);
    if (focused) {
      const again = list.querySelector(`[data-conv="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
    $('no-conversations').hidden = convs.length > 0;
    if (!convs.length) $('new-panel').open = true;
    const total = convs.reduce((n, c) => n + c.unread, 0);
    document.title = total ? `(${total}) Messaging` : 'Messaging';
    const toggle = $('toggle-sidebar');
    toggle.textContent = total ? `Conversations (${total} unread)` : 'Conversations';
    const expanded = !$('layout').classList.contains('collapsed');
    toggle.setAttribute('aria-expanded', String(expanded));
  }

  function renderChat(s) {
    const conv = s.selected ? s.conversations.get(s.selected) : null;
    $('chat-empty').hidden = Boolean(conv);
    $('chat-pane').hidden = !conv;
    if (!conv) return;
    const self = conv.kind === 'direct' && conv.target === me(s);
    $('chat-title').textContent = displayName(s, conv);
    $('chat-id-label').textContent = conv.kind === 'group' ? 'Group id (share it to invite)' : 'User id';
    $('chat-id').value = conv.target;

    const block = $('block-button');
    block.hidden = conv.kind !== 'direct' || self;
    block.textContent = conv.blocked ? 'Unblock' : 'Block';
    block.setAttribute('aria-pressed', String(Boolean(conv.blocked)));
    const membership = $('membership-button');
    membership.hidden = conv.kind !== 'group';
    membership.textContent = conv.member === false ? 'Join group' : 'Leave group';

    const list = $('messages');
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80 || list.dataset.conv !== conv.id;
    const records = [...messagesOf(s, conv.id).values()].sort(byTime);
    list.replaceChildren(...records.map((r) => renderMessage(s, conv, r)));
    if (!records.length) {
      list.append(el('li', { class: 'empty', text: conv.kind === 'group' ? 'No messages in this group yet.' : 'No messages yet.' }));
    }
    list.dataset.conv = conv.id;
    if (nearBottom) list.scrollTop = list.scrollHeight;

    const composer = $('composer-text');
    const closed = conv.kind === 'group' && conv.member === false;
    composer.disabled = closed;
    $('send-button').disabled = closed;
    composer.placeholder = closed ? 'Join the group again to send' : '';
    renderComposerStatus(s);
  }

  /** Acknowledged ones by the server's time; pending ones after them, in the order written. */
  function byTime(a, b) {
    const ka = a.sent_at || '\uffff';
    const kb = b.sent_at || '\uffff';
    if (ka !== kb) return ka < kb ? -1 : 1;
    return (a.seq || 0) - (b.seq || 0) || a.created - b.created;
  }

  function formatTime(when) {
    const today = new Date().toDateString() === when.toDateString();
    return today ? when.toLocaleTimeString([], { timeStyle: 'short' })
      : when.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
  }

  const STATE_LABELS = { pending: 'Sending…', sent: 'Sent', failed: 'Not sent' };

  function renderMessage(s, conv, r) {
    const mine = r.sender_id === me(s);
    const when = r.sent_at ? new Date(r.sent_at) : null;
    const meta = el('div', { class: 'meta' },
      el('span', { class: 'who', text: senderName(s, r) }),
      when ? el('time', { dateTime: r.sent_at, text: formatTime(when) }) : null,
      mine ? el('span', { class: 'state', text: STATE_LABELS[r.state] || '' }) : null);
    const item = el('li', { class: `msg ${mine ? 'mine' : 'theirs'}`, 'data-state': r.state, 'data-key': r.key },
      meta, el('p', { class: 'text', text: r.text }));
    if (r.state === 'failed') {
      item.append(el('div', { class: 'failed-row' },
        el('span', { class: 'why', text: r.error || '' }),
        el('button', { type: 'button', class: 'small-button', text: 'Retry', onclick: () => retry(s, r) })));
    }
    return item;
  }

  function showApp(s) {
    $('signin').hidden = true;
    $('app').hidden = false;
    $('me-name').textContent = s.profile.user_name;
    $('me-id').value = s.profile.user_id;
    $('layout').classList.remove('collapsed');
    setStatus($('sidebar-status'), '');
    setStatus($('composer-status'), '');
    const conn = $('conn-status');
    conn.dataset.state = 'connecting';
    conn.textContent = 'Connecting…';
  }

  function showSignin(message) {
    $('app').hidden = true;
    $('signin').hidden = false;
    setStatus($('signin-status'), message || '', Boolean(message));
    const profiles = loadProfiles();
    $('saved-profiles').hidden = profiles.length === 0;
    $('profile-list').replaceChildren(...profiles.map((p) => el('li', { class: 'profile' },
      el('span', { class: 'profile-text' },
        el('strong', { text: p.user_name }), ' ', el('span', { class: 'mono small', text: p.user_id })),
      el('span', { class: 'profile-actions' },
        el('button', { type: 'button', class: 'primary', text: 'Continue', 'aria-label': `Continue as ${p.user_name}`, onclick: () => resume(p) }),
        el('button', { type: 'button', text: 'Forget', 'aria-label': `Forget ${p.user_name}`, onclick: () => forget(p) })))));
    $('register-name').focus();
  }

  function resume(profile) {
    localStorage.setItem(CURRENT_KEY, profile.user_id);
    startSession(profile);
  }

  function forget(profile) {
    saveProfiles(loadProfiles().filter((p) => p.user_id !== profile.user_id));
    try { indexedDB.deleteDatabase(dbName(profile.user_id)); } catch (_) { /* nothing stored */ }
    showSignin();
  }

  function signOut() {
    stopSession();
    localStorage.removeItem(CURRENT_KEY);
    showSignin();
  }

  function unauthorized(s) {
    if (s !== session) return;
    stopSession();
    localStorage.removeItem(CURRENT_KEY);
    showSignin(`The server no longer accepts the profile “${s.profile.user_name}” (Unauthorized). Sign in again: register, or continue as another profile.`);
  }

  // ------------------------------------------------------------------ wiring the page

  async function copyFrom(inputId, button) {
    const input = $(inputId);
    let ok = false;
    try {
      await navigator.clipboard.writeText(input.value);
      ok = true;
    } catch (_) {
      // No clipboard API outside a secure context: select and copy the old way.
      input.select();
      try { ok = document.execCommand('copy'); } catch (__) { ok = false; }
    }
    const before = button.dataset.label || button.textContent;
    button.dataset.label = before;
    button.textContent = ok ? 'Copied' : 'Select and copy';
    announce(ok ? 'Copied to the clipboard.' : 'Could not copy: the id is selected, copy it yourself.');
    if (!ok) { input.focus(); input.select(); }
    setTimeout(() => { button.textContent = before; }, 2000);
  }

  function bind() {
    $('register-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const name = $('register-name').value.trim();
      if (!name) { setStatus($('signin-status'), 'Enter a name to register.', true); return; }
      const button = event.submitter || $('register-form').querySelector('button');
      button.disabled = true;
      setStatus($('signin-status'), 'Registering…');
      try {
        const answer = await call('register', { user_name: name });
        const profile = { user_id: answer.user_id, user_name: answer.user_name, token: answer.token };
        rememberProfile(profile);
        $('register-name').value = '';
        await startSession(profile);
      } catch (err) {
        setStatus($('signin-status'), describe(err), true);
      } finally { button.disabled = false; }
    });

    for (const button of document.querySelectorAll('[data-copy]')) {
      button.addEventListener('click', () => copyFrom(button.dataset.copy, button));
    }
    $('sign-out').addEventListener('click', signOut);
    $('toggle-sidebar').addEventListener('click', () => {
      $('layout').classList.toggle('collapsed');
      if (session) renderConversations(session);
    });

    $('direct-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const s = session;
      const id = $('direct-id').value.trim();
      if (!UUID_RE.test(id)) { setStatus($('sidebar-status'), 'A user id looks like 1b4e28ba-2fa1-11d2-883f-0016d3cca427.', true); return; }
      setStatus($('sidebar-status'), '');
      startDirect(s, id, $('direct-name').value.trim());
      $('direct-id').value = '';
      $('direct-name').value = '';
      $('new-panel').open = false;   // done: the list comes back into view
    });

    $('group-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const s = session;
      const name = $('group-name').value.trim();
      if (!name) { setStatus($('sidebar-status'), 'Enter a name for the group.', true); return; }
      setStatus($('sidebar-status'), 'Creating the group…');
      try {
        const group = await call('create_group', { group_name: name }, { token: s.profile.token, signal: s.abort.signal });
        // The creator is not a member until joining, like everyone else.
        const conv = await setMembership(s, group.group_id, true, group.group_name);
        $('group-name').value = '';
        $('new-panel').open = false;
        setStatus($('sidebar-status'), '');
        select(s, conv.id);
        showNote(s, conv.id, `Group “${group.group_name}” created. Share its group id (above) to invite people.`);
      } catch (err) {
        if (err.code === 'Unauthorized') { unauthorized(s); return; }
        setStatus($('sidebar-status'), describe(err), true);
      }
    });

    $('join-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const s = session;
      const id = $('join-id').value.trim();
      if (!UUID_RE.test(id)) { setStatus($('sidebar-status'), 'A group id looks like 1b4e28ba-2fa1-11d2-883f-0016d3cca427.', true); return; }
      setStatus($('sidebar-status'), 'Joining…');
      try {
        const conv = await setMembership(s, id, true, $('join-name').value.trim());
        $('join-id').value = '';
        $('join-name').value = '';
        $('new-panel').open = false;
        setStatus($('sidebar-status'), '');
        select(s, conv.id);
        showNote(s, conv.id, `You joined “${displayName(s, conv)}”.`);
      } catch (err) {
        if (err.code === 'Unauthorized') { unauthorized(s); return; }
        setStatus($('sidebar-status'), describe(err), true);
      }
    });

    $('composer').addEventListener('submit', (event) => {
      event.preventDefault();
      const s = session;
      const conv = s && s.conversations.get(s.selected);
      if (!conv) return;
      const box = $('composer-text');
      const text = box.value;
      if (!text.trim()) return;
      if (codePoints(text) > MAX_TEXT_CHARS) {
        showError(s, conv.id, `A message holds at most ${MAX_TEXT_CHARS} characters; this one has ${codePoints(text)}.`);
        return;
      }
      clearError(s, conv.id);
      box.value = '';
      queueSend(s, conv, text);
    });
    $('composer-text').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $('composer').requestSubmit();
      }
    });

    $('block-button').addEventListener('click', async () => {
      const s = session;
      const conv = s && s.conversations.get(s.selected);
      if (!conv || conv.kind !== 'direct') return;
      try {
        const answer = await call('block', { blocking_user_id: me(s), blocked_user_id: conv.target, to_block: conv.blocked ? 0 : 1 },
          { token: s.profile.token, signal: s.abort.signal });
        conv.blocked = answer.blocked;
        await persist(s, { conversations: [conv] });
        render(s);
        showNote(s, conv.id, conv.blocked
          ? `You blocked ${displayName(s, conv)}: their direct messages no longer reach you.`
          : `You unblocked ${displayName(s, conv)}.`);
      } catch (err) {
        if (err.code === 'Unauthorized') { unauthorized(s); return; }
        showError(s, conv.id, describe(err));
      }
    });

    $('membership-button').addEventListener('click', async () => {
      const s = session;
      const conv = s && s.conversations.get(s.selected);
      if (!conv || conv.kind !== 'group') return;
      const join = conv.member === false;
      try {
        await setMembership(s, conv.target, join);
        render(s);
        showNote(s, conv.id, join ? 'You joined the group again.' : 'You left the group: you no longer receive its messages.');
      } catch (err) {
        if (err.code === 'Unauthorized') { unauthorized(s); return; }
        showError(s, conv.id, describe(err));
      }
    });

    window.addEventListener('online', () => wakeups.dispatchEvent(new Event('wake')));
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && session) catchUp(session);
    });
  }

  function boot() {
    bind();
    const current = localStorage.getItem(CURRENT_KEY);
    const profile = loadProfiles().find((p) => p.user_id === current);
    if (profile) startSession(profile);
    else showSignin();
  }

  boot();
})();
