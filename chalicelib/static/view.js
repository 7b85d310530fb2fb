/* The page: rendering and the DOM's events. Text from the server or the user
 * only ever reaches the page through textContent. The controller's handlers
 * are given to bind(); rendering reads the session it is handed.
 */

import {
  MAX_DEVICE_NAME_CHARS, MAX_GROUP_NAME_CHARS, MAX_HANDLE_CHARS, MAX_MESSAGE_CHARS, MAX_PASSWORD_CHARS,
  MAX_USER_NAME_CHARS, MIN_PASSWORD_CHARS,
} from './contract.js';
import { HANDLE_RULE, deviceName } from './helpers.js';

export const $ = (id) => document.getElementById(id);

/** An element with properties and children; strings become text nodes, never markup. */
export function el(tag, props, ...children) {
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

/** A form's submit runs `handler`, its submit button off until the handler settles (no second click meanwhile). */
export function onSubmit(id, handler) {
  $(id).addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = event.submitter || $(id).querySelector('button[type="submit"]');
    button.disabled = true;
    try { await handler(); } finally { button.disabled = false; }
  });
}

const STATE_LABELS = { pending: 'Sending…', sent: 'Sent', failed: 'Not sent' };

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

export class View {
  constructor() {
    this.on = {};
    // The server's limits, from the contract. maxlength counts UTF-16 units: a code point is at most two.
    for (const id of ['register-name', 'account-name']) $(id).maxLength = MAX_USER_NAME_CHARS;
    for (const id of ['register-handle', 'login-handle', 'account-handle']) $(id).maxLength = MAX_HANDLE_CHARS + 1;  // and an @
    for (const id of ['register-password', 'login-password', 'account-password', 'account-current', 'delete-password']) {
      $(id).maxLength = MAX_PASSWORD_CHARS;
    }
    for (const id of ['register-handle-rule', 'account-handle-rule']) $(id).textContent = HANDLE_RULE;
    $('register-password-rule').textContent = `At least ${MIN_PASSWORD_CHARS} characters.`;
    $('device-name').maxLength = MAX_DEVICE_NAME_CHARS;
    $('device-name').value = deviceName();
    $('group-name').maxLength = MAX_GROUP_NAME_CHARS;
    $('composer-text').maxLength = 2 * MAX_MESSAGE_CHARS;
  }

  // ---------------------------------------------------------------- events

  /**
   * `on` holds the controller's handlers. A form's handler gets its trimmed
   * fields; when it answers true the fields are cleared and the panel closes.
   */
  bind(on) {
    this.on = on;
    // The three ways in. The handler gets {field: value, device_name} (passwords as typed, the rest trimmed);
    // its button is off while the call is out, and the fields are cleared when it answers true.
    const signinForm = (id, fields, handler) => onSubmit(id, async () => {
      const values = Object.fromEntries(fields.map(([key, field]) => [key, key === 'password' ? $(field).value : $(field).value.trim()]));
      values.device_name = $('device-name').value.trim();
      if (await handler(values)) for (const [, field] of fields) $(field).value = '';
    });
    signinForm('register-form', [['name', 'register-name'], ['handle', 'register-handle'], ['password', 'register-password']],
      on.register);
    signinForm('login-form', [['handle', 'login-handle'], ['password', 'login-password']], on.login);
    signinForm('link-form', [['code', 'link-code']], on.link);
    $('account-button').addEventListener('click', () => on.openAccount());

    for (const button of document.querySelectorAll('[data-copy]')) {
      button.addEventListener('click', () => this.copyFrom(button.dataset.copy, button));
    }
    $('sign-out').addEventListener('click', () => on.signOut());
    $('reconnect').addEventListener('click', () => on.reconnect());
    $('toggle-sidebar').addEventListener('click', () => {
      $('layout').classList.toggle('collapsed');
      on.sidebarToggled();
    });

    const form = (id, fields, handler) => $(id).addEventListener('submit', async (event) => {
      event.preventDefault();
      if (await handler(...fields.map((field) => $(field).value.trim()))) {
        for (const field of fields) $(field).value = '';
        $('new-panel').open = false;   // done: the list comes back into view
      }
    });
    form('direct-form', ['direct-id', 'direct-name'], on.startDirect);
    form('group-form', ['group-name'], on.createGroup);
    form('join-form', ['join-id', 'join-name'], on.joinGroup);

    $('composer').addEventListener('submit', (event) => {
      event.preventDefault();
      const box = $('composer-text');
      if (on.send(box.value)) box.value = '';
    });
    $('composer-text').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $('composer').requestSubmit();
      }
    });
    $('block-button').addEventListener('click', () => on.toggleBlock());
    $('membership-button').addEventListener('click', () => on.toggleMembership());
  }

  async copyFrom(inputId, button) {
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
    this.announce(ok ? 'Copied to the clipboard.' : 'Could not copy: the id is selected, copy it yourself.');
    if (!ok) { input.focus(); input.select(); }
    setTimeout(() => { button.textContent = before; }, 2000);
  }

  // ---------------------------------------------------------------- screens

  showApp(s) {
    $('signin').hidden = true;
    $('app').hidden = false;
    this.showMe(s.profile);
    $('me-id').value = s.profile.user_id;
    $('layout').classList.remove('collapsed');
    this.status('sidebar', '');
    this.status('composer', '');
    $('reconnect').hidden = true;
    const conn = $('conn-status');
    conn.dataset.state = 'connecting';
    conn.textContent = 'Connecting…';
  }

  /** The name and handle in the top bar. */
  showMe(profile) {
    $('me-name').textContent = profile.user_name;
    $('me-handle').textContent = profile.handle ? `@${profile.handle}` : '';
  }

  /**
   * The sign-in screen: register, sign in, link this device, or one of
   * `profiles`. `message` says why it is shown (an error unless `isError` is false).
   */
  showSignin(profiles, message, isError = true) {
    $('app').hidden = true;
    $('signin').hidden = false;
    for (const which of ['register', 'login', 'link']) this.status(which, '');
    this.status('signin', message || '', Boolean(message) && isError);
    $('saved-profiles').hidden = profiles.length === 0;
    $('profile-list').replaceChildren(...profiles.map((p) => this.renderProfile(p)));
    $('register-name').focus();
  }

  /** Continuing with a profile signed out on this device: its handle and password, or a link code. */
  offerSignIn(p) {
    if (p.handle) {
      $('login-handle').value = p.handle;
      $('login-password').value = '';
      this.status('login', `Enter the password of @${p.handle} to sign in again; the history kept here comes back.`);
      $('login-password').focus();
    } else {
      this.status('link', `“${p.user_name}” has no handle: type a link code shown on a device where it is still signed in.`);
      $('link-code').focus();
    }
  }

  renderProfile(p) {
    const actions = el('span', { class: 'profile-actions' });
    const offer = () => {
      const forget = el('button', { type: 'button', text: 'Forget', 'aria-label': `Forget ${p.user_name}`, onclick: ask });
      actions.replaceChildren(
        el('button', { type: 'button', class: 'primary', text: 'Continue', 'aria-label': `Continue as ${p.user_name}`,
          onclick: () => this.on.resume(p) }),
        forget);
      return forget;
    };
    // Nothing is deleted until the second, explicit choice.
    const ask = () => {
      const keep = el('button', { type: 'button', text: 'Cancel', 'aria-label': `Keep ${p.user_name}`,
        onclick: () => offer().focus() });
      actions.replaceChildren(el('span', { class: 'confirm', role: 'group', 'aria-label': `Forget ${p.user_name}?` },
        el('span', { class: 'confirm-text', text: `Forget ${p.user_name} for good? Its token and history in this browser are deleted.` }),
        el('button', { type: 'button', class: 'danger', text: 'Forget for good', 'aria-label': `Yes, forget ${p.user_name}`,
          onclick: () => this.on.forget(p) }),
        keep));
      keep.focus();   // the safe choice is the one under the finger
    };
    offer();
    return el('li', { class: 'profile', 'data-user': p.user_id },
      el('span', { class: 'profile-text' },
        el('strong', { text: p.user_name }), ' ',
        p.handle ? el('span', { class: 'handle', text: `@${p.handle}` }) : null, p.handle ? ' ' : null,
        el('span', { class: 'mono small', text: p.user_id }),
        p.token ? null : el('span', { class: 'signed-out', text: 'Signed out on this device' })),
      actions);
  }

  // ---------------------------------------------------------------- the chat

  render(s) {
    if (!s.alive) return;
    this.renderConversations(s);
    this.renderChat(s);
  }

  renderConversations(s) {
    const list = $('conversation-list');
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.conv : null;
    const convs = [...s.conversations.values()].sort((a, b) => b.last_at - a.last_at);
    const items = convs.map((conv) => {
      const name = s.displayName(conv);
      const unread = conv.unread > 0 ? el('span', { class: 'unread', 'aria-hidden': 'true', text: String(conv.unread) }) : null;
      const label = `${conv.kind === 'group' ? 'Group' : 'Direct'}: ${name}${conv.unread ? `, ${conv.unread} unread` : ''}`;
      return el('li', null, el('button', {
        type: 'button', class: 'conv', 'data-conv': conv.id, 'data-unread': String(conv.unread),
        'aria-current': conv.id === s.selected ? 'true' : null, 'aria-label': label,
        onclick: () => this.on.select(s, conv.id),
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

  renderChat(s) {
    const conv = s.selected ? s.conversations.get(s.selected) : null;
    $('chat-empty').hidden = Boolean(conv);
    $('chat-pane').hidden = !conv;
    if (!conv) return;
    const self = conv.kind === 'direct' && conv.target === s.me;
    $('chat-title').textContent = s.displayName(conv);
    $('chat-handle').textContent = conv.kind === 'direct' && !self ? s.handleOf(conv.target) : '';
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
    const records = [...s.messagesOf(conv.id).values()].sort(byTime);
    list.replaceChildren(...records.map((r) => this.renderMessage(s, r)));
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
    this.renderComposerStatus(s);
  }

  renderMessage(s, r) {
    const mine = r.sender_id === s.me;
    const when = r.sent_at ? new Date(r.sent_at) : null;
    const meta = el('div', { class: 'meta' },
      el('span', { class: 'who', text: s.senderName(r) }),
      when ? el('time', { dateTime: r.sent_at, text: formatTime(when) }) : null,
      mine ? el('span', { class: 'state', text: STATE_LABELS[r.state] || '' }) : null);
    const item = el('li', { class: `msg ${mine ? 'mine' : 'theirs'}`, 'data-state': r.state, 'data-key': r.key },
      meta, el('p', { class: 'text', text: r.text }));
    if (r.state === 'failed') {
      item.append(el('div', { class: 'failed-row' },
        el('span', { class: 'why', text: r.error || '' }),
        el('button', { type: 'button', class: 'small-button', text: 'Retry', onclick: () => this.on.retry(s, r) })));
    }
    return item;
  }

  /** On narrow screens the chat takes the room. */
  collapseSidebar() { $('layout').classList.add('collapsed'); }

  focusComposer() { $('composer-text').focus(); }

  // ---------------------------------------------------------------- statuses

  /** The status line under a form: 'signin', 'sidebar' or 'composer'. */
  status(which, text, isError) {
    const node = $(`${which}-status`);
    node.textContent = text || '';
    node.classList.toggle('error', Boolean(text) && Boolean(isError));
  }

  showError(s, convId, text, key) {
    s.errors.set(convId, { text, key, error: true });
    if (convId === s.selected) this.renderComposerStatus(s);
  }

  /** The outcome of an action, where an error would be, without an error's look. */
  showNote(s, convId, text) {
    s.errors.set(convId, { text, key: null, error: false });
    if (convId === s.selected) this.renderComposerStatus(s);
  }

  clearError(s, convId) {
    s.errors.delete(convId);
    if (convId === s.selected) this.renderComposerStatus(s);
  }

  renderComposerStatus(s) {
    const shown = s.errors.get(s.selected);
    this.status('composer', shown ? shown.text : '', Boolean(shown && shown.error));
  }

  /** Once the live loop has stopped, only showHalted's own state is shown, until Reconnect. */
  setConnection(s, state, text) {
    if (!s.alive || (s.halted && state !== 'stopped')) return;
    $('reconnect').hidden = state !== 'stopped';
    const node = $('conn-status');
    if (node.dataset.state !== state || node.textContent !== text) {
      if (node.dataset.state !== state) this.announce(text);
      node.dataset.state = state;
      node.textContent = text;
    }
  }

  /** The live loop stopped on an answer that may not be retried: say why, and offer Reconnect. */
  showHalted(s, text) { this.setConnection(s, 'stopped', text); }

  announce(text) {
    const node = $('announcer');
    node.textContent = '';
    // A fresh text node in a polite live region is read out once.
    requestAnimationFrame(() => { node.textContent = text; });
  }

  announceIncoming(s, records) {
    if (!records.length) return;
    if (records.length > 3) { this.announce(`${records.length} new messages.`); return; }
    const clip = (t) => (t.length > 140 ? `${t.slice(0, 140)}…` : t);
    this.announce(records.map((r) => {
      const conv = s.conversations.get(r.conv);
      const where = conv.kind === 'group' ? ` in ${s.displayName(conv)}` : '';
      return `New message from ${s.senderName(r)}${where}: ${clip(r.text)}`;
    }).join(' '));
  }
}
