// What the person does: registering, signing in and out, conversations, groups, blocking, sending.

import { Account, accountMessage } from './account.js';
import { AccountView } from './accountview.js';
import * as api from './api.js';
import { describe } from './api.js';
import { MAX_ATTACHMENTS_PER_MESSAGE, MAX_MESSAGE_CHARS } from './contract.js';
import { HANDLE_RULE, UUID_RE, asHandle, codePoints, deviceName, passwordProblem, summary, wake } from './helpers.js';
import { discard, queueSend, resumePending, retry } from './outbox.js';
import { found, keepFresh, lookUp, remember } from './people.js';
import { Session } from './session.js';
import { EMPTY, MemoryStore, Store, deleteStore, profiles } from './store.js';
import { loadHistory, markSeen } from './events.js';
import { catchUp, startLive } from './sync.js';

export class Controller {
  constructor(view) {
    this.view = view;
    this.session = null;   // the one live session; every loop stops when it is replaced
    this.account = new Account(this, new AccountView(view));
    this.draft = [];       // the files that go with the next message (the composer's, like its text)
  }

  boot() {
    this.view.bind({
      register: (fields) => this.register(fields),
      login: (fields) => this.login(fields),
      link: (fields) => this.link(fields),
      openAccount: () => this.account.open(),
      resume: (profile) => this.resume(profile),
      forget: (profile) => this.forget(profile),
      signOut: () => this.signOut(),
      reconnect: () => this.reconnect(),
      sidebarToggled: () => { if (this.session) this.view.renderConversations(this.session); },
      select: (s, id) => this.select(s, id),
      startDirect: (target, nickname) => this.startDirect(target, nickname),
      createGroup: (name) => this.createGroup(name),
      joinGroup: (id, name) => this.joinGroup(id, name),
      send: (text) => this.send(text),
      retry: (s, record) => retry(s, record),
      discard: (s, record) => discard(s, record),
      attach: (files) => this.attach(files),
      unattach: (index) => { this.draft.splice(index, 1); this.view.renderDraft(this.draft); },
      downloadUrl: (s, id) => api.downloadUrl(s.auth, id),
      toggleBlock: () => this.toggleBlock(),
      toggleMembership: () => this.toggleMembership(),
      editMessage: (s, record, text) => this.editMessage(s, record, text),
      deleteMessage: (s, record) => this.deleteMessage(s, record),
      toggleMembers: () => this.toggleMembers(),
      moreMembers: () => this.loadMembers(true),
      reloadMembers: () => this.loadMembers(false),
      loadEarlier: () => {
        const s = this.session;
        const conv = s && s.conversations.get(s.selected);
        if (conv) loadHistory(s, conv);
      },
    });
    this.account.bind();
    window.addEventListener('online', wake);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && this.session) {
        catchUp(this.session);
        markSeen(this.session);   // the open conversation is seen again
      }
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
    try { store = await Store.open(profile.user_id); } catch (err) {
      store = new MemoryStore();
      storageWarning = err && err.message === 'blocked by another tab'
        ? 'Another tab with an older version of this page holds this browser\'s storage: the history is kept only until this page is closed. Close the other tab and reload.'
        : 'This browser refuses to store data: the history is kept only until the page is closed.';
    }
    const saved = await store.load().catch(() => EMPTY);
    this.stop();   // another start that finished first
    const s = new Session(profile, store, saved, this.view, (who, err) => this.unauthorized(who, err));
    s.onPeople = (people) => this.peopleChanged(s, people);
    this.session = s;
    this.view.showApp(s);
    if (saved.selected && s.conversations.has(saved.selected)) this.select(s, saved.selected, { focus: false });
    else this.view.render(s);
    if (storageWarning) this.view.status('sidebar', storageWarning, true);
    resumePending(s);
    startLive(s);
    keepFresh(s);   // names: now, and each hour those older than a day
  }

  stop() {
    this.draft = [];
    this.view.renderDraft(this.draft);
    const s = this.session;
    if (!s) return;
    this.session = null;
    this.account.close();
    s.stop();
  }

  showSignin(message, isError = true) { this.view.showSignin(profiles.list(), message, isError); }

  // ---------------------------------------------------------------- signing in

  /** The device name the person gave, else one from the user agent ("Chrome on Linux"). */
  deviceName(given) { return given || deviceName(); }

  /** Name; optionally a handle, and a password to sign in with elsewhere. */
  async register({ name, handle, password, device_name: device }) {
    const say = (text) => { this.view.status('register', text, true); return false; };
    if (!name) return say('Enter a name to register.');
    const params = { user_name: name, device_name: this.deviceName(device) };
    if (handle) {
      params.handle = asHandle(handle);
      if (!params.handle) return say(HANDLE_RULE);
    }
    if (password) {
      const problem = passwordProblem(password, Boolean(params.handle));
      if (problem) return say(problem);
      params.password = password;
    }
    this.view.status('register', 'Registering…');
    try {
      await this.signedIn(await api.register(params), { has_password: Boolean(password) });
      return true;
    } catch (err) {
      return say(accountMessage(err));
    }
  }

  async login({ handle, password, device_name: device }) {
    const say = (text) => { this.view.status('login', text, true); return false; };
    const h = asHandle(handle);
    if (!h) return say(handle ? HANDLE_RULE : 'Enter your handle.');
    if (!password) return say('Enter your password.');
    this.view.status('login', 'Signing in…');
    try {
      await this.signedIn(await api.login({ handle: h, password, device_name: this.deviceName(device) }), { has_password: true });
      return true;
    } catch (err) {
      return say(`Not signed in: ${accountMessage(err)}`);
    }
  }

  async link({ code, device_name: device }) {
    const say = (text) => { this.view.status('link', text, true); return false; };
    if (!code) return say('Enter the code shown on your other device (Account, then “Show a link code”).');
    this.view.status('link', 'Linking…');
    try {
      const answer = await api.link({ code, device_name: this.deviceName(device) });
      // A password needs a handle; with one, whether there is a password is not told.
      await this.signedIn(answer, { has_password: answer.handle ? null : false });
      return true;
    } catch (err) {
      return say(`Not linked: ${accountMessage(err)}`);
    }
  }

  /** A new session: an account this browser held before gets its history back. */
  async signedIn(answer, { has_password: hasPassword }) {
    const known = profiles.get(answer.user_id);
    const profile = {
      ...(known || {}), user_id: answer.user_id, user_name: answer.user_name, handle: answer.handle,
      token: answer.token, session_id: answer.session_id,
      has_password: hasPassword === null && known ? known.has_password ?? null : hasPassword,
    };
    profiles.remember(profile);
    await this.start(profile);
  }

  /** A profile with its token continues at once; one signed out here signs in again. */
  resume(profile) {
    const now = profiles.get(profile.user_id) || profile;
    if (!now.token) { this.view.offerSignIn(now); return; }
    profiles.setCurrent(now.user_id);
    this.start(now);
  }

  /** Only after the confirmation: the token and the history go, and the profile cannot be resumed. */
  async forget(profile) {
    profiles.remove(profile.user_id);
    await deleteStore(profile.user_id);
    this.showSignin();
  }

  /** The top bar's Sign out: this browser keeps the profile, and Continue brings it back. */
  signOut() {
    this.stop();
    profiles.clearCurrent();
    this.showSignin();
  }

  /** The server refused the token: this device was signed out (elsewhere, or the account deleted). */
  unauthorized(s, err) {
    if (s !== this.session || s.leaving) return;   // leaving: the Account dialog finishes it
    this.stop();
    profiles.signedOut(s.me);
    const why = err && err.message ? `: ${err.message}` : '';
    const again = s.profile.handle
      ? `To continue, sign in with @${s.profile.handle} and its password, or link this device with a code.`
      : 'To continue, link this device with a code shown on a device where the account is still signed in.';
    this.showSignin(`This device is no longer signed in as “${s.profile.user_name}” (Unauthorized${why}). ${again}`);
    this.view.offerSignIn(profiles.get(s.me) || s.profile);
  }

  /** This device signed itself out (Account): the history stays until the profile is forgotten. */
  signedOutHere(s, message) {
    if (s !== this.session) return;
    this.stop();
    profiles.signedOut(s.me);
    this.showSignin(`${message} The history stays in this browser until you forget the profile.`, false);
  }

  async accountDeleted(s) {
    if (s !== this.session) return;
    this.stop();
    profiles.remove(s.me);
    await deleteStore(s.me);
    this.showSignin(`The account “${s.profile.user_name}” was deleted, and its history in this browser too.`, false);
  }

  /** Name, handle or password changed here: the stored profile and the top bar follow. */
  profileChanged(s, change) {
    s.profile = profiles.update(s.me, change) || { ...s.profile, ...change };
    this.view.showMe(s.profile);
    return s.profile;
  }

  /** New names from /users: shown; this account's own, if changed on another device, kept too. */
  peopleChanged(s, people) {
    if (s !== this.session) return;
    const me = people.find((p) => p.user_id === s.me && !p.deleted);
    if (me && (me.user_name !== s.profile.user_name || me.handle !== s.profile.handle)) {
      // A handle set on another device may have come with a password: not known here.
      const change = { user_name: me.user_name, handle: me.handle };
      if (me.handle && !s.profile.handle && s.profile.has_password !== true) change.has_password = null;
      this.profileChanged(s, change);
    }
    this.view.render(s);
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
    if (s.selected !== id) this.view.closeMembers();
    s.selected = id;
    s.persist({ meta: { selected: id } });
    this.view.collapseSidebar();
    markSeen(s);   // read up to its newest message, on every device
    this.view.render(s);
    if (conv.history && !conv.history.loaded) loadHistory(s, conv);   // a new device: its latest messages
    if (focus) this.view.focusComposer();
  }

  /** By handle (looked up with /find_user) or by a pasted user id; the nickname is only for this browser. */
  async startDirect(target, nickname) {
    const s = this.session;
    const say = (text) => { this.view.status('sidebar', text, true); return false; };
    let id;
    if (UUID_RE.test(target)) {
      id = target.toLowerCase();
    } else {
      const handle = asHandle(target);
      if (!handle) return say('Enter their handle (like ana_k) or their user id (like 1b4e28ba-2fa1-11d2-883f-0016d3cca427).');
      this.view.status('sidebar', `Looking for @${handle}…`);
      try {
        const user = await api.findUser(s.auth, handle);
        if (s !== this.session) return false;
        remember(s, [found(user)]);
        id = user.user_id;
      } catch (err) {
        if (s !== this.session) return false;   // signed out meanwhile (a 401 signs out: api.js)
        if (err.code === 'UserNotFound') return say(`Nobody has the handle @${handle}. Check its spelling.`);
        return say(describe(err));
      }
    }
    this.view.status('sidebar', '');
    const conv = s.conversation(`d:${id}`, { last_at: Date.now() });
    if (nickname) conv.name = nickname;
    s.persist({ conversations: [conv] });
    this.select(s, conv.id);
    lookUp(s, [id], { force: Boolean(s.people.get(id)?.deleted) });   // one not known yet is asked anyway
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
      if (s === this.session) this.view.status('sidebar', describe(err), true);
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
      if (s === this.session) this.view.status('sidebar', describe(err), true);
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
      if (s === this.session) this.view.showError(s, conv.id, describe(err));
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
      if (s === this.session) this.view.showError(s, conv.id, describe(err));
    }
  }

  // ---------------------------------------------------------------- editing and deleting

  /** Only the sender's own, acknowledged messages; the `edit` event brings the change to every device. */
  async editMessage(s, record, text) {
    if (s !== this.session || record.deleted || !record.message_id) return false;
    if (!text.trim()) { this.view.showError(s, record.conv, 'A message cannot be empty: delete it instead.'); return false; }
    if (codePoints(text) > MAX_MESSAGE_CHARS) {
      this.view.showError(s, record.conv, `A message holds at most ${MAX_MESSAGE_CHARS} characters; this one has ${codePoints(text)}.`);
      return false;
    }
    if (text === record.text) return true;
    try {
      const answer = await api.editMessage(s.auth, { message_id: record.message_id, message_text: text });
      if (s !== this.session) return false;
      await this.changeRecord(s, record, { text, edited_at: answer.edited_at });
      this.view.clearError(s, record.conv);
      return true;
    } catch (err) {
      if (s === this.session) this.view.showError(s, record.conv, `Not edited: ${describe(err)}`);
      if (err.code === 'MessageDeleted') await this.changeRecord(s, record, { deleted: true, text: null, attachments: [] });
      return false;
    }
  }

  async deleteMessage(s, record) {
    if (s !== this.session || !record.message_id) return;
    try {
      await api.deleteMessage(s.auth, { message_id: record.message_id });
      if (s !== this.session) return;
      await this.changeRecord(s, record, { deleted: true, text: null, attachments: [] });   // its files go with it
      this.view.clearError(s, record.conv);
    } catch (err) {
      if (s === this.session) this.view.showError(s, record.conv, `Not deleted: ${describe(err)}`);
    }
  }

  /** What the server accepted, shown at once (its event, when it comes, says the same). */
  async changeRecord(s, record, change) {
    await s.exclusive(async () => {
      const map = s.messagesOf(record.conv);
      const now = map.get(record.key);
      if (!now) return;
      Object.assign(now, change);
      const conv = s.conversations.get(record.conv);
      const conversations = [];
      if (conv && now.seq && now.seq === conv.last_seq) {
        conv.last_text = now.deleted ? 'This message was deleted' : summary(now);
        conversations.push(conv);
      }
      await s.persist({ messages: [now], conversations });
      this.view.render(s);
    });
  }

  // ---------------------------------------------------------------- a group's members

  toggleMembers() {
    if (this.view.membersOpen()) { this.view.closeMembers(); return; }
    this.loadMembers(false);
  }

  /** /group_info, a page at a time: `more` asks for the page after those shown. */
  async loadMembers(more) {
    const s = this.session;
    const conv = s && s.conversations.get(s.selected);
    if (!conv || conv.kind !== 'group') return;
    const params = { group_id: conv.target, limit: 100 };
    if (more && this.view.membersAfter) params.after_user_id = this.view.membersAfter;
    this.view.openMembers(conv.id, more);
    try {
      const info = await api.groupInfo(s.auth, params);
      if (s !== this.session || s.selected !== conv.id) return;
      remember(s, info.members.filter((m) => m.user_name !== null).map(found));
      this.view.showMembers(s, info, more);
    } catch (err) {
      if (s !== this.session) return;
      if (err.code === 'NotAMember') s.markMembership(conv.id, false);
      this.view.membersStatus(err.code === 'NotAMember' ? 'Only members see who is in the group: join it again to see them.' : describe(err), true);
    }
  }

  // ---------------------------------------------------------------- sending

  /** Files picked or dropped: kept for the next message, at most as many as one message carries. */
  attach(files) {
    const s = this.session;
    const conv = s && s.conversations.get(s.selected);
    if (!conv || !files.length) return;
    const room = MAX_ATTACHMENTS_PER_MESSAGE - this.draft.length;
    const empty = files.filter((f) => f.size === 0);
    const taken = files.filter((f) => f.size > 0).slice(0, Math.max(0, room));
    this.draft.push(...taken);
    this.view.renderDraft(this.draft);
    if (empty.length) {
      this.view.showError(s, conv.id, `“${empty[0].name}” is empty: there is nothing to send.`);
    } else if (taken.length < files.length) {
      this.view.showError(s, conv.id, `A message carries at most ${MAX_ATTACHMENTS_PER_MESSAGE} files: only the first ones were attached.`);
    } else {
      this.view.clearError(s, conv.id);
    }
  }

  /** True when the text (and the files attached) were queued (the composer is then emptied). */
  send(text) {
    const s = this.session;
    const conv = s && s.conversations.get(s.selected);
    const files = this.draft;
    if (!conv || (!text.trim() && !files.length)) return false;
    if (codePoints(text) > MAX_MESSAGE_CHARS) {
      this.view.showError(s, conv.id, `A message holds at most ${MAX_MESSAGE_CHARS} characters; this one has ${codePoints(text)}.`);
      return false;
    }
    this.view.clearError(s, conv.id);
    this.draft = [];
    this.view.renderDraft(this.draft);
    queueSend(s, conv, text.trim() ? text : '', files);
    return true;
  }
}
