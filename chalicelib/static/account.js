/* The Account dialog: a link code that signs another device in, the devices
 * (sessions) signed in and signing them out, the name, handle and password,
 * and deleting the account. Its page is accountview.js; signing out this
 * device, or the account going, hands back to the controller.
 */

import * as api from './api.js';
import { describe } from './api.js';
import { HANDLE_RULE, asHandle, passwordProblem, sleep } from './helpers.js';
import { found, remember } from './people.js';

const WATCH_EVERY_MS = 3000;   // while a code is shown: has a new device signed in with it?

/** What a person reads for a failed account call: the server's own words where they are the clearest. */
export function accountMessage(err) {
  if (['BadRequest', 'Forbidden', 'BadCredentials'].includes(err.code) && err.message) return err.message;
  return describe(err);
}

export class Account {
  /** `controller` gives the live session and takes over when this device is signed out. */
  constructor(controller, view) {
    this.controller = controller;
    this.view = view;               // an AccountView
    this.watching = null;           // an AbortController while a shown code is watched
  }

  get session() { return this.controller.session; }

  bind() {
    this.view.bind({
      closed: () => this.stopWatching(),
      showLinkCode: () => this.showLinkCode(),
      signOutSession: (session) => this.signOutSession(session),
      signOutEverywhere: () => this.signOutEverywhere(),
      save: (fields) => this.save(fields),
      askDelete: () => { if (this.session) this.view.askDelete(this.session.profile); },
      deleteAccount: (password) => this.deleteAccount(password),
      setReceipts: (on) => this.setReceipts(on),
    });
  }

  open() {
    const s = this.session;
    if (!s) return;
    this.view.open(s.profile);
    this.refreshSessions(s);
    this.loadAccount(s);
  }

  // ---------------------------------------------------------------- read receipts

  /** /account: whether read receipts are sent, and whether the account has a password (a linked device learns it). */
  async loadAccount(s) {
    this.view.showReceipts(null);
    try {
      const answer = await api.account(s.auth);
      if (s !== this.session || !this.view.isOpen) return;
      this.view.showReceipts(answer.read_receipts);
      if (answer.has_password !== s.profile.has_password) {
        this.controller.profileChanged(s, { has_password: answer.has_password });
        this.view.showCurrentPassword(answer.has_password);
      }
    } catch (err) {
      this.failed(s, err, 'receipts', 'Cannot read the setting: ');
    }
  }

  async setReceipts(on) {
    const s = this.session;
    if (!s) return;
    this.view.status('receipts', 'Saving…');
    this.view.showReceipts(null, on);
    try {
      const answer = await api.updateAccount(s.auth, { read_receipts: on ? 1 : 0 });
      if (s !== this.session) return;
      this.view.showReceipts(answer.read_receipts);
      this.view.status('receipts', answer.read_receipts
        ? 'Saved: people you chat with see when you have read their messages.'
        : 'Saved: people you chat with no longer see when you have read their messages.');
    } catch (err) {
      this.view.showReceipts(!on);
      this.failed(s, err, 'receipts', 'Not saved: ');
    }
  }

  close() {
    this.stopWatching();
    this.view.close();
  }

  /**
   * Shown at `where`, unless the session has ended (a 401 ends it as it is answered: api.js).
   * A 401 to a call made while leaving (signOutHere, deleteAccount) was held back: told now.
   */
  failed(s, err, where, prefix = '') {
    if (s !== this.session) return;
    if (err.code === 'Unauthorized') { this.controller.unauthorized(s, err); return; }
    this.view.status(where, `${prefix}${accountMessage(err)}`, true);
  }

  // ---------------------------------------------------------------- devices

  async refreshSessions(s) {
    try {
      const answer = await api.sessions(s.auth);
      if (s !== this.session) return null;
      this.sessions = answer.sessions;
      this.view.renderSessions(answer.sessions, (session) => this.risk(s, session));
      return answer.sessions;
    } catch (err) {
      this.failed(s, err, 'sessions', 'Cannot list the devices: ');
      return null;
    }
  }

  /**
   * The question to ask before signing out `session` (null for 'all'), or
   * null: only when that may leave the account with no way back in (no
   * password, and no other device to show a link code).
   */
  risk(s, session) {
    const others = (this.sessions || []).filter((x) => !x.current).length;
    if (s.profile.has_password === true) return null;
    const lost = s.profile.has_password === false ? 'This account has no password' : 'If this account has no password';
    if (session === null) return `${lost}, nobody can sign in to it again once every device is signed out. Sign out everywhere?`;
    if (session.current && others === 0) return `${lost}, nobody can sign in to it again once this last device is signed out. Sign out?`;
    return null;
  }

  async signOutSession(session) {
    const s = this.session;
    if (!s) return;
    if (session.current) { await this.signOutHere(s, {}, 'You signed out of this device.'); return; }
    this.view.status('sessions', `Signing out “${session.device_name}”…`);
    try {
      await api.logout(s.auth, { session_id: session.session_id });
      if (s !== this.session) return;
      this.view.status('sessions', `“${session.device_name}” is signed out.`);
      await this.refreshSessions(s);
    } catch (err) {
      this.failed(s, err, 'sessions', `Could not sign out “${session.device_name}”: `);
    }
  }

  signOutEverywhere() {
    const s = this.session;
    if (!s) return;
    const go = () => this.signOutHere(s, { all: 1 }, null);
    const question = this.risk(s, null);
    if (question) this.view.askEverywhere(question, go);
    else go();
  }

  /** /logout that includes this device: back to signing in, without the token. */
  async signOutHere(s, params, message) {
    this.view.status('sessions', 'Signing out…');
    // The server closes this device's socket as it answers: the live loop's 401 is not news.
    s.leaving = true;
    try {
      const answer = await api.logout(s.auth, params);
      if (s !== this.session) return;
      this.close();
      const n = answer.revoked;
      this.controller.signedOutHere(s, message || `You signed out everywhere (${n} ${n === 1 ? 'device' : 'devices'}).`);
    } catch (err) {
      s.leaving = false;
      this.failed(s, err, 'sessions', 'Could not sign out: ');
    }
  }

  // ---------------------------------------------------------------- the link code

  async showLinkCode() {
    const s = this.session;
    if (!s) return;
    this.stopWatching();
    this.view.status('link-code', 'Asking for a code…');
    try {
      const listed = await this.refreshSessions(s);
      const before = listed ? new Set(listed.map((x) => x.session_id)) : null;
      const answer = await api.linkCode(s.auth);
      if (s !== this.session || !this.view.isOpen) return;
      const deadline = Date.now() + answer.expires_in * 1000;
      this.view.showCode(answer.code, deadline);
      this.watch(s, before, deadline);
    } catch (err) {
      this.failed(s, err, 'link-code', 'No code: ');
    }
  }

  /**
   * Until the code is used or expires (or the dialog closes): a session not
   * in `before` (null: the first list that comes) means it was used.
   */
  async watch(s, before, deadline) {
    const watching = new AbortController();
    this.watching = watching;
    while (!watching.signal.aborted && Date.now() < deadline) {
      await sleep(WATCH_EVERY_MS, watching.signal);
      if (watching.signal.aborted || s !== this.session) return;
      const sessions = await this.refreshSessions(s);
      if (!sessions) continue;
      if (!before) { before = new Set(sessions.map((x) => x.session_id)); continue; }
      const fresh = sessions.find((x) => !before.has(x.session_id));
      if (fresh && !watching.signal.aborted) {
        this.view.codeUsed(fresh.device_name);
        this.stopWatching();
        return;
      }
    }
  }

  stopWatching() {
    if (this.watching) this.watching.abort();
    this.watching = null;
  }

  // ---------------------------------------------------------------- name, handle, password

  /** Only what changed is sent; the current password when the account has one (or might). */
  async save({ name, handle, password, current }) {
    const s = this.session;
    if (!s) return;
    const profile = s.profile;
    const say = (text) => { this.view.status('account', text, true); return false; };
    const params = {};
    if (!name) return say('Your name cannot be empty.');
    if (name !== profile.user_name) params.user_name = name;
    if (handle) {
      const h = asHandle(handle);
      if (!h) return say(HANDLE_RULE);
      if (h !== profile.handle) params.handle = h;
    } else if (profile.handle) {
      return say('A handle can be changed, not removed.');
    }
    if (password) {
      const problem = passwordProblem(password, Boolean(profile.handle || params.handle));
      if (problem) return say(problem);
      params.password = password;
    }
    if (!Object.keys(params).length) { this.view.status('account', 'Nothing changed.'); return true; }
    const guarded = params.password !== undefined || params.handle !== undefined;
    if (guarded && current) params.current_password = current;
    if (guarded && !current && profile.has_password === true) {
      this.view.focusCurrentPassword();
      return say('Enter your current password to change the handle or the password.');
    }
    this.view.status('account', 'Saving…');
    try {
      const answer = await api.updateAccount(s.auth, params);
      if (s !== this.session) return false;
      // What the server's acceptance tells of the password.
      let hasPassword = profile.has_password;
      if (params.password) hasPassword = true;
      else if (guarded) hasPassword = Boolean(params.current_password);
      const updated = this.controller.profileChanged(s, {
        user_name: answer.user_name, handle: answer.handle, has_password: hasPassword,
      });
      remember(s, [found(answer)]);
      const said = ['Saved.'];
      if (params.handle) said.push(`Others can now find you as @${answer.handle}.`);
      if (params.password) said.push('Other devices signed in were signed out: sign them in with the new password.');
      this.view.saved(updated, said.join(' '));
      if (params.password) this.refreshSessions(s);
      return true;
    } catch (err) {
      if (err.code === 'BadRequest' && /^current_password:/.test(err.message)) {
        // The account has a password after all (set on another device, or this one was linked by code).
        this.controller.profileChanged(s, { has_password: true });
        this.view.showCurrentPassword(true);
        this.view.focusCurrentPassword();
        return say('This account has a password: enter it as the current password.');
      }
      if (err.code === 'BadCredentials') {
        this.view.focusCurrentPassword();
        return say('The current password is wrong: nothing was changed.');
      }
      this.failed(s, err, 'account', 'Not saved: ');
      return false;
    }
  }

  // ---------------------------------------------------------------- deleting

  async deleteAccount(password) {
    const s = this.session;
    if (!s) return;
    if (!password && s.profile.has_password === true) {
      this.view.status('delete', 'Enter your password to delete the account.', true);
      this.view.showDeletePassword();
      return;
    }
    this.view.status('delete', 'Deleting…');
    try {
      s.leaving = true;   // as for signing out: every session ends as the server answers
      try {
        await api.deleteAccount(s.auth, password ? { password } : {});
      } catch (err) {
        s.leaving = false;
        throw err;
      }
      if (s !== this.session) return;
      this.close();
      await this.controller.accountDeleted(s);
    } catch (err) {
      if (err.code === 'BadRequest' && /^password:/.test(err.message)) {
        this.controller.profileChanged(s, { has_password: true });
        this.view.status('delete', 'This account has a password: enter it to delete the account.', true);
        this.view.showDeletePassword();
        return;
      }
      if (err.code === 'BadCredentials') {
        this.view.status('delete', 'The password is wrong: nothing was deleted.', true);
        this.view.showDeletePassword();
        return;
      }
      this.failed(s, err, 'delete', 'Not deleted: ');
    }
  }
}
