/* The Account dialog's page: a link code and its countdown, the devices
 * signed in, the name, handle and password form, and deleting the account
 * (asked first). As in view.js, text reaches the page only through
 * textContent; account.js decides what is shown.
 */

import { parseTime } from './helpers.js';
import { $, el, onSubmit } from './view.js';

const clock = (ms) => {
  const total = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, '0')}`;
};

function formatWhen(iso) {
  const when = parseTime(iso);
  return when === null ? '' : new Date(when).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

export class AccountView {
  constructor(view) {
    this.view = view;          // for status() and announce()
    this.on = {};
    this.ticking = null;       // the link code's countdown
  }

  get dialog() { return $('account-dialog'); }

  get isOpen() { return this.dialog.open; }

  status(which, text, isError) { this.view.status(which, text, isError); }

  bind(on) {
    this.on = on;
    $('account-close').addEventListener('click', () => this.close());
    this.dialog.addEventListener('close', () => {
      this.stopCountdown();
      on.closed();
      if (!$('app').hidden) $('account-button').focus();   // back where the person was
    });
    $('show-link-code').addEventListener('click', () => on.showLinkCode());
    $('sign-out-everywhere').addEventListener('click', () => on.signOutEverywhere());
    onSubmit('account-form', () => on.save({
      name: $('account-name').value.trim(), handle: $('account-handle').value.trim(),
      password: $('account-password').value, current: $('account-current').value,
    }));
    $('delete-account').addEventListener('click', () => on.askDelete());
    $('delete-keep').addEventListener('click', () => this.hideDelete());
    onSubmit('delete-form', () => on.deleteAccount($('delete-password').value));
    $('read-receipts').addEventListener('change', () => on.setReceipts($('read-receipts').checked));
  }

  /** The setting as the server has it; null: being asked or saved (`shown`: the box as it stays meanwhile). */
  showReceipts(on, shown = on) {
    const box = $('read-receipts');
    box.disabled = on === null;
    if (shown !== null) box.checked = Boolean(shown);
  }

  // ---------------------------------------------------------------- the dialog

  /** Opened fresh: no code, the devices loading, the form filled from `profile`. */
  open(profile) {
    this.hideCode();
    for (const which of ['link-code', 'sessions', 'account', 'delete', 'receipts']) this.status(which, '');
    $('session-list').replaceChildren(el('li', { class: 'hint', text: 'Loading the devices…' }));
    $('session-list').setAttribute('aria-busy', 'true');
    for (const asked of $('everywhere-row').querySelectorAll('.confirm')) asked.remove();
    $('sign-out-everywhere').hidden = false;
    this.fillForm(profile);
    this.hideDelete(false);
    if (!this.isOpen) this.dialog.showModal();
    $('show-link-code').focus();
  }

  close() { if (this.isOpen) this.dialog.close(); }

  // ---------------------------------------------------------------- the link code

  /** Shows `code` until `deadline` (ms since the epoch), counting down each second. */
  showCode(code, deadline) {
    this.stopCountdown();
    $('link-code-box').hidden = false;
    $('link-code-text').textContent = code;
    $('show-link-code').textContent = 'Show a new code';
    const tick = () => {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.hideCode();
        this.status('link-code', 'The code expired unused. Show a new one when the other device is ready.');
        return;
      }
      $('link-code-timer').textContent = `Valid for ${clock(left)}`;
    };
    tick();
    this.ticking = setInterval(tick, 1000);
    this.status('link-code', '');
    this.announce(`Link code ${code.split('').join(' ')}, valid for five minutes.`);
  }

  hideCode() {
    this.stopCountdown();
    $('link-code-box').hidden = true;
    $('link-code-text').textContent = '';
    $('link-code-timer').textContent = '';
    $('show-link-code').textContent = 'Show a link code';
  }

  stopCountdown() {
    clearInterval(this.ticking);
    this.ticking = null;
  }

  /** The code was used: the device it signed in is named. */
  codeUsed(deviceName) {
    this.hideCode();
    this.status('link-code', `“${deviceName}” signed in with the code.`);
  }

  announce(text) { this.view.announce(text); }

  // ---------------------------------------------------------------- devices

  /**
   * `sessions` as /sessions answers them, this device first. `confirm(session)`
   * answers the question to ask before signing it out, or null.
   */
  renderSessions(sessions, confirm) {
    const list = $('session-list');
    list.removeAttribute('aria-busy');
    const ordered = [...sessions].sort((a, b) => (b.current - a.current) || (a.created_at < b.created_at ? -1 : 1));
    list.replaceChildren(...ordered.map((session) => this.renderSession(session, confirm)));
    if (!sessions.length) list.append(el('li', { class: 'hint', text: 'No devices.' }));
  }

  renderSession(session, confirm) {
    const name = session.device_name;
    const label = `Sign out ${name}${session.current ? ' (this device)' : ''}`;
    const actions = el('span', { class: 'session-actions' });
    const offer = () => {
      const button = el('button', { type: 'button', text: 'Sign out', 'aria-label': label, onclick: () => ask() });
      actions.replaceChildren(button);
      return button;
    };
    const ask = () => {
      const question = confirm(session);
      if (!question) { this.on.signOutSession(session); return; }
      const keep = el('button', { type: 'button', text: 'Cancel', 'aria-label': `Keep ${name} signed in`,
        onclick: () => offer().focus() });
      actions.replaceChildren(el('span', { class: 'confirm', role: 'group', 'aria-label': `${label}?` },
        el('span', { class: 'confirm-text', text: question }),
        el('button', { type: 'button', class: 'danger', text: 'Sign out', 'aria-label': `Yes, ${label.toLowerCase()}`,
          onclick: () => this.on.signOutSession(session) }),
        keep));
      keep.focus();
    };
    offer();
    return el('li', { class: 'session', 'data-session': session.session_id, 'data-current': String(session.current) },
      el('span', { class: 'session-text' },
        el('strong', { text: name }),
        session.current ? el('span', { class: 'this-device', text: ' (this device)' }) : null,
        el('span', { class: 'hint session-when', text: `Signed in ${formatWhen(session.created_at)}` })),
      actions);
  }

  /** Sign out everywhere, asked first with `question`; `yes` runs on the second choice. */
  askEverywhere(question, yes) {
    const button = $('sign-out-everywhere');
    const done = (focus) => {
      ask.remove();
      button.hidden = false;
      if (focus) button.focus();
    };
    const keep = el('button', { type: 'button', text: 'Cancel', onclick: () => done(true) });
    const ask = el('span', { class: 'confirm', role: 'group', 'aria-label': 'Sign out everywhere?' },
      el('span', { class: 'confirm-text', text: question }),
      el('button', { type: 'button', class: 'danger', text: 'Sign out everywhere', 'aria-label': 'Yes, sign out everywhere',
        onclick: () => { done(false); yes(); } }),
      keep);
    button.hidden = true;
    $('everywhere-row').append(ask);
    keep.focus();
  }

  // ---------------------------------------------------------------- name, handle, password

  fillForm(profile) {
    $('account-name').value = profile.user_name;
    $('account-handle').value = profile.handle || '';
    $('account-password').value = '';
    $('account-current').value = '';
    this.showCurrentPassword(profile.has_password);
  }

  /** Asked only when the account has a password (or might: a device linked by code cannot tell). */
  showCurrentPassword(hasPassword) {
    $('account-current-row').hidden = hasPassword === false;
    $('account-current-hint').textContent = hasPassword
      ? '(needed to change the handle or the password)'
      : '(if the account has one: needed to change the handle or the password)';
  }

  focusCurrentPassword() { $('account-current').focus(); }

  /** After a save: the passwords are not kept in the page. */
  saved(profile, message) {
    this.fillForm(profile);
    this.status('account', message);
  }

  // ---------------------------------------------------------------- deleting

  /** The question, and the password field when the account has one (or might). */
  askDelete(profile) {
    $('delete-account').hidden = true;
    $('delete-form').hidden = false;
    $('delete-question').textContent = `Delete “${profile.user_name}” for good? It cannot be undone: every device is signed out and the history kept in this browser is deleted.`;
    const asks = profile.has_password !== false;
    $('delete-password-row').hidden = !asks;
    $('delete-username').value = profile.handle || '';
    $('delete-password-hint').textContent = profile.has_password ? '(this account has one)' : '(if the account has one)';
    $('delete-password').value = '';
    this.status('delete', '');
    if (profile.has_password) $('delete-password').focus();
    else $('delete-keep').focus();   // the safe choice is the one under the finger
  }

  showDeletePassword() {
    $('delete-password-row').hidden = false;
    $('delete-password-hint').textContent = '(this account has one)';
    $('delete-password').focus();
  }

  hideDelete(focus = true) {
    $('delete-form').hidden = true;
    $('delete-password').value = '';
    $('delete-account').hidden = false;
    if (focus) $('delete-account').focus();
  }
}
