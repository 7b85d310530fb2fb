// What the person does: signing in and out, conversations, groups, blocking, sending.

import * as api from './api.js';
import { describe } from './api.js';
import { MAX_MESSAGE_CHARS } from './contract.js';
import { codePoints, wake } from './helpers.js';
import { queueSend, resumePending, retry } from './outbox.js';
import { Session } from './session.js';
import { EMPTY, MemoryStore, Store, deleteStore, profiles } from './store.js';
import { catchUp, startLive } from './sync.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class Controller {
  constructor(view) {
    this.view = view;
    this.session = null;   // the one live session; every loop stops when it is replaced
  }

  boot() {
    this.view.bind({
      register: (name) => this.register(name),
      resume: (profile) => this.resume(profile),
      forget: (profile) => this.forget(profile),
      signOut: () => this.signOut(),
      reconnect: () => this.reconnect(),
      sidebarToggled: () => { if (this.session) this.view.renderConversations(this.session); },
      select: (s, id) => this.select(s, id),
      startDirect: (id, name) => this.startDirect(id, name),
      createGroup: (name) => this.createGroup(name),
      joinGroup: (id, name) => this.joinGroup(id, name),
      send: (text) => this.send(text),
      retry: (s, record) => retry(s, record),
      toggleBlock: () => this.toggleBlock(),
      toggleMembership: () => this.toggleMembership(),
    });
    window.addEventListener('online', wake);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && this.session) catchUp(this.session);
    });
    const profile = profiles.current();
    if (profile) this.start(profile);
    else this.showSignin();
  }

  // ---------------------------------------------------------------- the session

  async start(profile) {
    this.stop();
    let store;
    let storageWarning = '';
    try { store = await Store.open(profile.user_id); } catch (_) {
      store = new MemoryStore();
      storageWarning = 'This browser refuses to store data: the history is kept only until the page is closed.';
    }
    const saved = await store.load().catch(() => EMPTY);
    this.stop();   // another start that finished first
    const s = new Session(profile, store, saved, this.view, (who) => this.unauthorized(who));
    this.session = s;
    this.view.showApp(s);
    if (saved.selected && s.conversations.has(saved.selected)) this.select(s, saved.selected, { focus: false });
    else this.view.render(s);
    if (storageWarning) this.view.status('sidebar', storageWarning, true);
    resumePending(s);
    startLive(s);
  }

  stop() {
    const s = this.session;
    if (!s) return;
    this.session = null;
    s.stop();
  }

  showSignin(message) { this.view.showSignin(profiles.list(), message); }

  async register(name) {
    if (!name) { this.view.status('signin', 'Enter a name to register.', true); return false; }
    this.view.status('signin', 'Registering…');
    try {
      const answer = await api.register(name);
      const profile = { user_id: answer.user_id, user_name: answer.user_name, token: answer.token };
      profiles.remember(profile);
      await this.start(profile);
      return true;
    } catch (err) {
      this.view.status('signin', describe(err), true);
      return false;
    }
  }

  resume(profile) {
    profiles.setCurrent(profile.user_id);
    this.start(profile);
  }

  /** Only after the confirmation: the token and the history go, and the profile cannot be resumed. */
  async forget(profile) {
    profiles.remove(profile.user_id);
    await deleteStore(profile.user_id);
    this.showSignin();
  }

  signOut() {
    this.stop();
    profiles.clearCurrent();
    this.showSignin();
  }

  unauthorized(s) {
    if (s !== this.session) return;
    this.stop();
    profiles.clearCurrent();
    this.showSignin(`The server no longer accepts the profile “${s.profile.user_name}” (Unauthorized). Sign in again: register, or continue as another profile.`);
  }

  reconnect() {
    const s = this.session;
    if (!s || !s.halted) return;
    s.halted = null;
    this.view.setConnection(s, 'connecting', 'Connecting…');
    startLive(s);
  }

  // ---------------------------------------------------------------- conversations

  select(s, id, { focus = true } = {}) {
    const conv = s.conversations.get(id);
    if (!conv) return;
    s.selected = id;
    const change = { meta: { selected: id } };
    if (conv.unread) { conv.unread = 0; change.conversations = [conv]; }
    s.persist(change);
    this.view.collapseSidebar();
    this.view.render(s);
    if (focus) this.view.focusComposer();
  }

  startDirect(id, name) {
    const s = this.session;
    if (!UUID_RE.test(id)) { this.view.status('sidebar', 'A user id looks like 1b4e28ba-2fa1-11d2-883f-0016d3cca427.', true); return false; }
    this.view.status('sidebar', '');
    const conv = s.conversation(`d:${id.toLowerCase()}`, { last_at: Date.now() });
    if (name) conv.name = name;
    s.persist({ conversations: [conv] });
    this.select(s, conv.id);
    return true;
  }

  async createGroup(name) {
    const s = this.session;
    if (!name) { this.view.status('sidebar', 'Enter a name for the group.', true); return false; }
    this.view.status('sidebar', 'Creating the group…');
    try {
      const group = await api.createGroup(s.auth, name);
      // The creator is not a member until joining, like everyone else.
      const conv = await this.setMembership(s, group.group_id, true, group.group_name);
      this.view.status('sidebar', '');
      this.select(s, conv.id);
      this.view.showNote(s, conv.id, `Group “${group.group_name}” created. Share its group id (above) to invite people.`);
      return true;
    } catch (err) {
      if (err.code === 'Unauthorized') { this.unauthorized(s); return false; }
      this.view.status('sidebar', describe(err), true);
      return false;
    }
  }

  async joinGroup(id, name) {
    const s = this.session;
    if (!UUID_RE.test(id)) { this.view.status('sidebar', 'A group id looks like 1b4e28ba-2fa1-11d2-883f-0016d3cca427.', true); return false; }
    this.view.status('sidebar', 'Joining…');
    try {
      const conv = await this.setMembership(s, id, true, name);
      this.view.status('sidebar', '');
      this.select(s, conv.id);
      this.view.showNote(s, conv.id, `You joined “${s.displayName(conv)}”.`);
      return true;
    } catch (err) {
      if (err.code === 'Unauthorized') { this.unauthorized(s); return false; }
      this.view.status('sidebar', describe(err), true);
      return false;
    }
  }

  async setMembership(s, groupId, join, name) {
    const answer = await api.updateGroup(s.auth, { user_id: s.me, group_id: groupId, to_be_added: join ? 1 : 0 });
    const conv = s.conversation(`g:${groupId.toLowerCase()}`, { last_at: Date.now() });
    if (name) conv.name = name;
    conv.member = answer.member;
    await s.persist({ conversations: [conv] });
    return conv;
  }

  async toggleMembership() {
    const s = this.session;
    const conv = s && s.conversations.get(s.selected);
    if (!conv || conv.kind !== 'group') return;
    const join = conv.member === false;
    try {
      await this.setMembership(s, conv.target, join);
      this.view.render(s);
      this.view.showNote(s, conv.id, join ? 'You joined the group again.' : 'You left the group: you no longer receive its messages.');
    } catch (err) {
      if (err.code === 'Unauthorized') { this.unauthorized(s); return; }
      this.view.showError(s, conv.id, describe(err));
    }
  }

  async toggleBlock() {
    const s = this.session;
    const conv = s && s.conversations.get(s.selected);
    if (!conv || conv.kind !== 'direct') return;
    try {
      const answer = await api.block(s.auth, { blocking_user_id: s.me, blocked_user_id: conv.target, to_block: conv.blocked ? 0 : 1 });
      conv.blocked = answer.blocked;
      await s.persist({ conversations: [conv] });
      this.view.render(s);
      this.view.showNote(s, conv.id, conv.blocked
        ? `You blocked ${s.displayName(conv)}: their direct messages no longer reach you.`
        : `You unblocked ${s.displayName(conv)}.`);
    } catch (err) {
      if (err.code === 'Unauthorized') { this.unauthorized(s); return; }
      this.view.showError(s, conv.id, describe(err));
    }
  }

  // ---------------------------------------------------------------- sending

  /** True when the text was queued (the composer is then emptied). */
  send(text) {
    const s = this.session;
    const conv = s && s.conversations.get(s.selected);
    if (!conv || !text.trim()) return false;
    if (codePoints(text) > MAX_MESSAGE_CHARS) {
      this.view.showError(s, conv.id, `A message holds at most ${MAX_MESSAGE_CHARS} characters; this one has ${codePoints(text)}.`);
      return false;
    }
    this.view.clearError(s, conv.id);
    queueSend(s, conv, text);
    return true;
  }
}
