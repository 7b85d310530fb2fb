/* The page: rendering and the DOM's events. Text from the server or the user
 * only ever reaches the page through textContent. The controller's handlers
 * are given to bind(); rendering reads the session it is handed.
 */

import { describe } from './api.js';
import {
  MAX_DEVICE_NAME_CHARS, MAX_GROUP_NAME_CHARS, MAX_HANDLE_CHARS, MAX_MESSAGE_CHARS, MAX_PASSWORD_CHARS,
  MAX_USER_NAME_CHARS, MIN_PASSWORD_CHARS,
} from './contract.js';
import { HANDLE_RULE, deviceName, formatBytes, summary } from './helpers.js';

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
// Pictures every browser shows; others (HEIC) are offered as a download, like any file.
const INLINE_IMAGES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
const URL_MARGIN_MS = 15000;       // a download URL is asked again this long before it expires
const URL_RETRY_MS = 5000;         // after a failed /download_url, the next render asks again only after this
const DELETED_TEXT = 'This message was deleted';

/**
 * In the order of this account's stream (its seqs); kept before the stream
 * (no seq) by the server's time; pending ones after them, in the order written.
 */
function byTime(a, b) {
  if (a.seq && b.seq) return a.seq - b.seq;
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
    this.media = new Map();         // attachment id -> {node, link, img, url, until, …}: kept across renders
    this.mediaOwner = null;         // the session the media belong to
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

    // Files: the Attach button's picker, or dropped onto the conversation.
    $('attach-button').addEventListener('click', () => $('composer-file').click());
    $('composer-file').addEventListener('change', () => {
      const input = $('composer-file');
      on.attach([...input.files]);
      input.value = '';   // the same file may be picked again
    });
    const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes('Files');
    const pane = $('chat-pane');
    for (const type of ['dragenter', 'dragover']) {
      pane.addEventListener(type, (event) => {
        if (!hasFiles(event) || $('attach-button').disabled) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = 'copy';
        pane.classList.add('dropping');
      });
    }
    pane.addEventListener('dragleave', (event) => {
      if (!pane.contains(event.relatedTarget)) pane.classList.remove('dropping');
    });
    pane.addEventListener('drop', (event) => {
      pane.classList.remove('dropping');
      if (!hasFiles(event)) return;
      event.preventDefault();
      if (!$('attach-button').disabled) on.attach([...event.dataTransfer.files]);
    });
    // A file dropped anywhere else is not opened in place of the app.
    for (const type of ['dragover', 'drop']) window.addEventListener(type, (event) => { if (hasFiles(event)) event.preventDefault(); });

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
    $('members-button').addEventListener('click', () => on.toggleMembers());
    $('members-more').addEventListener('click', () => on.moreMembers());
    $('members-close').addEventListener('click', () => { this.closeMembers(); $('members-button').focus(); });
    // Scrolled to the top: earlier messages, when there are more to load (a device that did not read the whole stream).
    $('messages').addEventListener('scroll', () => {
      if ($('messages').scrollTop < 40 && $('messages').querySelector('[data-action="earlier"]')) on.loadEarlier();
    });
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
    $('members-button').hidden = conv.kind !== 'group';

    const list = $('messages');
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80 || list.dataset.conv !== conv.id;
    const fromBottom = list.scrollHeight - list.scrollTop;   // kept when earlier messages come in above
    if (list.dataset.conv !== conv.id) { this.editing = null; this.confirming = null; }
    // A message being edited keeps its draft, its focus and its selection across renders.
    const box = document.activeElement && document.activeElement.classList.contains('edit-box') ? document.activeElement : null;
    const selection = box ? [box.selectionStart, box.selectionEnd] : null;
    const focusedAction = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.action : null;
    const records = [...s.messagesOf(conv.id).values()].sort(byTime);
    list.replaceChildren(...records.map((r) => this.renderMessage(s, r, conv)));
    const history = conv.history;
    if (history && !history.done) {
      list.prepend(el('li', { class: 'earlier' }, history.loaded
        ? el('button', { type: 'button', class: 'small-button', text: 'Load earlier messages', 'data-action': 'earlier',
          onclick: () => this.on.loadEarlier() })
        : el('span', { class: 'hint', text: 'Loading the messages…' })));
    }
    if (!records.some((r) => r.kind !== 'member') && !(history && !history.done)) {
      list.append(el('li', { class: 'empty', text: conv.kind === 'group' ? 'No messages in this group yet.' : 'No messages yet.' }));
    }
    list.dataset.conv = conv.id;
    if (nearBottom) list.scrollTop = list.scrollHeight;
    else list.scrollTop = list.scrollHeight - fromBottom;
    if (box) {
      const again = list.querySelector('.edit-box');
      if (again) { again.focus(); again.setSelectionRange(...selection); }
    } else if (focusedAction) {
      const again = list.querySelector(`[data-action="${CSS.escape(focusedAction)}"]`);
      if (again) again.focus();
    }

    const composer = $('composer-text');
    const closed = conv.kind === 'group' && conv.member === false;
    composer.disabled = closed;
    $('send-button').disabled = closed;
    $('attach-button').disabled = closed;
    composer.placeholder = closed ? 'Join the group again to send' : '';
    this.renderComposerStatus(s);
  }

  renderMessage(s, r, conv) {
    if (r.kind === 'member') {
      const who = r.user_id === s.me ? 'You' : s.personName(r.user_id);
      return el('li', { class: 'event-line', 'data-key': r.key, text: `${who} ${r.member ? 'joined' : 'left'}` });
    }
    const mine = r.sender_id === s.me;
    const when = r.sent_at ? new Date(r.sent_at) : null;
    const read = mine && r.state === 'sent' && this.readByThem(conv, r);
    const meta = el('div', { class: 'meta' },
      el('span', { class: 'who', text: s.senderName(r) }),
      when ? el('time', { dateTime: r.sent_at, text: formatTime(when) }) : null,
      r.edited_at && !r.deleted ? el('span', { class: 'edited', text: '(edited)' }) : null,
      mine ? this.renderState(r, read) : null);
    const item = el('li', {
      class: `msg ${mine ? 'mine' : 'theirs'}${r.deleted ? ' deleted' : ''}`, 'data-state': r.state, 'data-key': r.key,
      'data-read': mine && r.state === 'sent' ? String(read) : null,
    }, meta);
    if (r.deleted) {
      item.append(el('p', { class: 'text', text: DELETED_TEXT }));
      return item;
    }
    if (this.editing === r.key) {
      item.append(this.renderEditor(s, r));
      return item;
    }
    const files = r.attachments || [];
    if (r.text || !files.length) item.append(el('p', { class: 'text', text: r.text }));
    if (files.length) item.append(this.renderAttachments(s, r, files));
    if (mine && r.state === 'sent' && r.message_id) item.append(this.renderActions(s, r));
    if (r.state === 'failed') {
      item.append(el('div', { class: 'failed-row' },
        el('span', { class: 'why', text: r.error || '' }),
        r.retryable === false ? null
          : el('button', { type: 'button', class: 'small-button', text: 'Retry', onclick: () => this.on.retry(s, r) }),
        r.message_id ? null : el('button', { type: 'button', class: 'small-button', text: 'Discard',
          'aria-label': 'Discard this message', onclick: () => this.on.discard(s, r) })));
    }
    return item;
  }

  // ---------------------------------------------------------------- attachments

  /** A message's files: being uploaded (name, size, progress), or stored (a picture shown, a file to download). */
  renderAttachments(s, r, files) {
    return el('ul', { class: 'attachments', 'aria-label': files.length === 1 ? 'Attached file' : `${files.length} attached files` },
      ...files.map((a, index) => el('li', null, r.state === 'pending' || r.state === 'failed' || !a.attachment_id
        ? this.renderLocalFile(s, r, a, index) : this.mediaNode(s, a))));
  }

  renderLocalFile(s, r, a, index) {
    const name = a.file_name || 'file';
    const uploading = r.state === 'pending' && !a.attachment_id;
    const bar = uploading ? el('progress', { class: 'upload-progress', max: 1, 'aria-label': `Uploading ${name}` }) : null;
    const node = el('div', { class: 'attachment local', 'data-index': String(index) },
      el('div', { class: 'file-row' },
        el('span', { class: 'file-name', text: name }),
        el('span', { class: 'file-size', text: formatBytes(a.size) }),
        el('span', { class: 'upload-state', text: a.attachment_id ? 'Uploaded' : uploading ? 'Waiting to upload' : 'Not uploaded' })),
      bar);
    if (uploading) this.setProgress(node, s.progress.get(`${r.key}:${index}`));
    return node;
  }

  setProgress(node, fraction) {
    const bar = node.querySelector('progress');
    if (!bar || fraction === undefined) return;
    if (fraction === null) bar.removeAttribute('value');   // started, size of the work not known yet
    else bar.value = fraction;
    node.querySelector('.upload-state').textContent = fraction === null ? 'Uploading…' : `Uploading… ${Math.round(fraction * 100)}%`;
  }

  /** The outbox's upload of a record's file moved on: its bar, without rendering the whole list. */
  showProgress(s, record, index, fraction) {
    s.progress.set(`${record.key}:${index}`, fraction);
    if (record.conv !== s.selected) return;
    const item = $('messages').querySelector(`[data-key="${CSS.escape(record.key)}"] [data-index="${index}"]`);
    if (item) this.setProgress(item, fraction);
  }

  /**
   * A stored file: a picture shown inline and a link to download it, its
   * name and size. The node is kept across renders (a picture is not
   * fetched again), its URL from /download_url asked when first shown and
   * again before it expires while shown (or when shown again later).
   */
  mediaNode(s, a) {
    if (this.mediaOwner !== s) {
      for (const entry of this.media.values()) clearTimeout(entry.timer);
      this.media = new Map();
      this.mediaOwner = s;
    }
    let entry = this.media.get(a.attachment_id);
    if (!entry) {
      entry = this.makeMedia(s, a);
      this.media.set(a.attachment_id, entry);
    }
    if (!entry.gone && !entry.asking && entry.until - URL_MARGIN_MS < Date.now() && entry.retryAt <= Date.now()) {
      this.refreshUrl(s, entry);
    }
    return entry.node;
  }

  makeMedia(s, a) {
    const name = a.file_name || 'attachment';
    const image = INLINE_IMAGES.has(a.content_type);
    const link = el('a', { class: 'file-link', text: name, download: name, 'aria-label': `Download ${name}, ${formatBytes(a.size)}` });
    const img = image ? el('img', { class: 'attachment-image', alt: name }) : null;
    const status = el('span', { class: 'file-status', role: 'status' });
    const node = el('div', { class: `attachment ${image ? 'picture' : 'file'}`, 'data-attachment': a.attachment_id },
      img, el('div', { class: 'file-row' }, link, el('span', { class: 'file-size', text: formatBytes(a.size) }), status));
    const entry = { id: a.attachment_id, node, link, img, status, url: null, until: 0, retryAt: 0, asking: null, timer: null,
      failures: 0, gone: false };
    // A URL that expired while nobody looked (a sleeping tab) is asked again before the download.
    link.addEventListener('click', (event) => {
      if (entry.url && entry.until > Date.now()) return;
      event.preventDefault();
      this.refreshUrl(s, entry).then(() => { if (entry.url && entry.until > Date.now()) link.click(); });
    });
    if (img) {
      img.addEventListener('load', () => {
        entry.failures = 0;
        const list = $('messages');   // a picture that grows the list keeps the newest message in view
        if (list.scrollHeight - list.scrollTop - list.clientHeight < img.clientHeight + 120) list.scrollTop = list.scrollHeight;
      });
      img.addEventListener('error', () => {
        if (!entry.url) return;
        entry.failures += 1;
        if (entry.failures <= 2) this.refreshUrl(s, entry, true);   // expired, most likely
        else status.textContent = 'The picture cannot be shown.';
      });
    }
    return entry;
  }

  refreshUrl(s, entry, reload = false) {
    if (entry.asking) return entry.asking;
    entry.asking = this.on.downloadUrl(s, entry.id).then((answer) => {
      entry.url = answer.url;
      entry.until = Date.now() + answer.expires_in * 1000;
      entry.link.href = answer.url;
      entry.status.textContent = '';
      if (entry.img && (reload || !entry.img.complete || entry.img.naturalWidth === 0)) entry.img.src = answer.url;
      clearTimeout(entry.timer);
      // While shown, the link is kept usable; a node not shown is asked again when it is.
      entry.timer = setTimeout(() => {
        if (entry.node.isConnected && s.alive) this.refreshUrl(s, entry);
      }, Math.max(1000, entry.until - URL_MARGIN_MS - Date.now()));
    }, (err) => {
      if (!s.alive || (err && err.name === 'AbortError')) return;
      entry.retryAt = Date.now() + URL_RETRY_MS;
      if (err.code === 'AttachmentNotFound') {
        entry.gone = true;
        entry.link.removeAttribute('href');
        if (entry.img) entry.img.hidden = true;
      }
      entry.status.textContent = err.code === 'AttachmentNotFound' ? 'No longer available.' : `Cannot get the file: ${describe(err)}`;
    }).finally(() => { entry.asking = null; });
    return entry.asking;
  }

  /** The files that go with the next message: name, size, and a button to take each one out. */
  renderDraft(files) {
    const list = $('composer-files');
    list.hidden = files.length === 0;
    list.replaceChildren(...files.map((file, index) => el('li', { class: 'draft-file' },
      el('span', { class: 'file-name', text: file.name || 'file' }),
      el('span', { class: 'file-size', text: formatBytes(file.size) }),
      el('button', { type: 'button', class: 'link-button', text: 'Remove', 'aria-label': `Remove ${file.name || 'the file'}`,
        onclick: () => { this.on.unattach(index); this.focusComposer(); } }))));
  }

  /** A direct chat's other person has read up to this message (their receipt). */
  readByThem(conv, r) {
    if (!conv || conv.kind !== 'direct' || conv.target === r.sender_id) return false;
    if (r.seq && conv.receipt_seq) return r.seq <= conv.receipt_seq;
    return Boolean(!r.seq && r.sent_at && conv.receipt_at && r.sent_at <= conv.receipt_at);
  }

  /** ✓ acknowledged by the server, ✓✓ read (direct chats); words while sending or failed. */
  renderState(r, read) {
    if (r.state !== 'sent') return el('span', { class: 'state', text: STATE_LABELS[r.state] || '' });
    return el('span', {
      class: `state tick${read ? ' read' : ''}`, role: 'img', 'aria-label': read ? 'Read' : 'Sent',
      title: read ? 'Read' : 'Sent', text: read ? '✓✓' : '✓',
    });
  }

  /** Edit and Delete on this account's own messages; Delete asks first, in the message itself. */
  renderActions(s, r) {
    const line = summary(r);
    const clip = line.length > 40 ? `${line.slice(0, 40)}…` : line;
    if (this.confirming === r.key) {
      const keep = el('button', {
        type: 'button', class: 'small-button', text: 'Keep', 'data-action': `keep:${r.key}`,
        onclick: () => { this.confirming = null; this.renderChat(s); this.focusAction(`delete:${r.key}`); },
      });
      return el('div', { class: 'confirm msg-actions', role: 'group', 'aria-label': 'Delete this message?' },
        el('span', { class: 'confirm-text', text: 'Delete this message for everyone?' }),
        el('button', {
          type: 'button', class: 'small-button danger', text: 'Delete for everyone', 'data-action': `confirm-delete:${r.key}`,
          onclick: () => { this.confirming = null; this.on.deleteMessage(s, r); },
        }),
        keep);
    }
    return el('div', { class: 'msg-actions' },
      !r.text ? null : el('button', {
        type: 'button', class: 'link-button', text: 'Edit', 'aria-label': `Edit message: ${clip}`, 'data-action': `edit:${r.key}`,
        onclick: () => {
          this.editing = r.key;
          this.editDraft = r.text;
          this.confirming = null;
          this.renderChat(s);
          const box = $('messages').querySelector('.edit-box');
          if (box) { box.focus(); box.setSelectionRange(box.value.length, box.value.length); }
        },
      }),
      el('button', {
        type: 'button', class: 'link-button', text: 'Delete', 'aria-label': `Delete message: ${clip}`,
        'data-action': `delete:${r.key}`,
        onclick: () => { this.confirming = r.key; this.renderChat(s); this.focusAction(`keep:${r.key}`); },
      }));
  }

  /** The message's text in place, editable: Enter (or Save) saves, Escape (or Cancel) keeps it as it was. */
  renderEditor(s, r) {
    const box = el('textarea', { class: 'edit-box', rows: 2, 'aria-label': 'Edit the message', value: this.editDraft ?? r.text });
    box.maxLength = 2 * MAX_MESSAGE_CHARS;
    const done = () => { this.editing = null; this.editDraft = null; this.renderChat(s); };
    const save = async () => {
      if (await this.on.editMessage(s, r, box.value)) {
        done();
        this.focusAction(`edit:${r.key}`);
      }
    };
    box.addEventListener('input', () => { this.editDraft = box.value; });
    box.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) { event.preventDefault(); save(); }
      if (event.key === 'Escape') { event.preventDefault(); done(); this.focusAction(`edit:${r.key}`); }
    });
    return el('form', { class: 'edit-form', onsubmit: (event) => { event.preventDefault(); save(); } },
      box,
      el('div', { class: 'msg-actions' },
        el('button', { type: 'submit', class: 'small-button primary', text: 'Save' }),
        el('button', { type: 'button', class: 'small-button', text: 'Cancel',
          onclick: () => { done(); this.focusAction(`edit:${r.key}`); } })));
  }

  focusAction(action) {
    const button = $('messages').querySelector(`[data-action="${CSS.escape(action)}"]`);
    if (button) button.focus();
  }

  // ---------------------------------------------------------------- a group's members

  membersOpen() { return !$('members-panel').hidden; }

  /** Shown for `convId`, loading; `more` keeps the members listed. */
  openMembers(convId, more) {
    const panel = $('members-panel');
    panel.hidden = false;
    panel.dataset.conv = convId;
    $('members-button').setAttribute('aria-expanded', 'true');
    if (!more) {
      this.membersAfter = null;
      $('member-list').replaceChildren();
      $('members-count').textContent = '';
    }
    $('members-more').hidden = true;
    this.membersStatus('Loading the members…');
  }

  closeMembers() {
    $('members-panel').hidden = true;
    $('members-panel').dataset.conv = '';
    $('members-button').setAttribute('aria-expanded', 'false');
    this.membersAfter = null;
  }

  /** A page of /group_info: names and @handles, this account marked. */
  showMembers(s, info, more) {
    const list = $('member-list');
    const items = info.members.map((m) => el('li', { class: 'member', 'data-user': m.user_id },
      el('strong', { text: m.user_name === null ? 'Deleted account' : m.user_name }),
      m.handle ? el('span', { class: 'handle', text: ` @${m.handle}` }) : null,
      m.user_id === s.me ? el('span', { class: 'hint', text: ' (you)' }) : null));
    if (more) list.append(...items); else list.replaceChildren(...items);
    $('members-count').textContent = `${info.member_count} ${info.member_count === 1 ? 'member' : 'members'}`;
    this.membersAfter = info.next_after_user_id;
    $('members-more').hidden = !info.next_after_user_id;
    this.membersStatus('');
  }

  membersStatus(text, isError) {
    const node = $('members-status');
    node.textContent = text || '';
    node.classList.toggle('error', Boolean(text) && Boolean(isError));
  }

  /** Someone joined or left these groups: an open list of members is asked again. */
  membersChanged(s, convIds) {
    const panel = $('members-panel');
    if (!panel.hidden && convIds.has(panel.dataset.conv) && panel.dataset.conv === s.selected) this.on.reloadMembers();
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
      return `New message from ${s.senderName(r)}${where}: ${clip(summary(r))}`;
    }).join(' '));
  }
}
