/* Receiving the stream (/sync): the cursor, WebSocket frames and long-polls.
 *
 * The server's cursor is the only truth. Everything received is kept in the
 * store with the cursor (the last seq applied, always contiguous), so a
 * reload shows the history and reads on from there. WebSocket frames and
 * long-polls only say "read sooner"; a frame whose seq is not cursor+1 sends
 * us back to a cursor read. A failed read is retried when the contract allows
 * (see api.js); one that may not be (a 500, say) stops the loop until the
 * person asks to reconnect.
 */

import { ApiError, connectTicket, describe, sync } from './api.js';
import { MAX_WAIT_SECONDS, WAIT_REFUSED_PAUSE_SECONDS } from './contract.js';
import { backoff, seconds, sleep } from './helpers.js';
import { applyEvent, bootstrap, loadHistory, markSeen, newBatch, refreshConversations } from './events.js';
import { lookUp } from './people.js';

const PAGE = 500;
const PING_EVERY_MS = 4 * 60 * 1000;   // API Gateway drops a socket idle for 10 minutes
const SAFETY_READ_MS = 60 * 1000;      // a lost last frame has no later gap to reveal it

/**
 * Applies the events that continue the cursor (seq = cursor+1, +2, …), drops
 * the ones already held. Answers true when an event beyond a gap was left
 * over, so the caller reads with the cursor.
 */
function applyEvents(s, events) {
  return s.exclusive(async () => {
    if (!s.alive) return false;
    let cursor = s.cursor;
    const batch = newBatch();
    let gap = false;
    for (const ev of events) {
      if (ev.seq <= cursor) continue;
      if (ev.seq !== cursor + 1) { gap = true; break; }
      applyEvent(s, ev, batch);
      cursor = ev.seq;
    }
    if (cursor === s.cursor) return gap;
    s.cursor = cursor;
    await s.persist({
      messages: [...batch.records.values()], remove: batch.remove, conversations: [...batch.conversations.values()], meta: { cursor, stream: true },
    });
    s.view.announceIncoming(s, batch.incoming);
    s.view.render(s);
    if (batch.people.size) lookUp(s, batch.people);   // names of senders and members not seen before
    if (batch.members.size) s.view.membersChanged(s, batch.members);
    markSeen(s);
    if (batch.needCounts) refreshConversations(s);
    return gap;
  });
}

/**
 * Cursor reads until has_more is false; `wait` long-polls the first one.
 * True when that wait was refused with nothing to read (too many waiting).
 */
async function readPages(s, wait) {
  let refused = false;
  for (;;) {
    let page;
    try {
      page = await sync(s.auth, { after: s.cursor, limit: PAGE, wait });
    } catch (err) {
      if (err.code === 'CursorAhead' && err.body && Number.isInteger(err.body.newest_seq)) {
        // The server's history is shorter than ours (its database was reset): read on from its end.
        await s.exclusive(async () => {
          s.cursor = err.body.newest_seq;
          await s.persist({ meta: { cursor: s.cursor, stream: true } });
        });
        s.view.status('sidebar', 'The server has fewer messages than this browser remembers; reading on from its newest.', true);
        continue;
      }
      throw err;
    }
    refused = refused || Boolean(wait && page.waitRefused && !page.events.length);
    const gap = await applyEvents(s, page.events);
    if (!page.has_more && !gap) return refused;
    wait = 0;
  }
}

/** Stops the live loop on an answer that may not be retried; Reconnect starts it again. */
function halt(s, err, prefix) {
  s.halted = err;
  if (s.ws) { try { s.ws.close(); } catch (_) { /* already closed */ } }
  s.view.showHalted(s, `${prefix}${describe(err)}`);
}

/**
 * After a failed read or ticket: false when the loop should end (signed
 * out, the token refused, or an answer that may not be retried), else shows
 * the error and waits out the back-off.
 */
async function waitOut(s, err, attempt, prefix = '') {
  if (!s.alive || s.halted || (err && err.name === 'AbortError')) return false;
  if (err.code === 'Unauthorized') return false;   // this device is signed out (api.js), or signing out
  if (err instanceof ApiError && !err.retryable) { halt(s, err, prefix); return false; }
  const wait = err.retryAfterMs ?? backoff(attempt);
  s.view.setConnection(s, 'offline', `${prefix}${describe(err, wait)}`);
  await sleep(wait, s.abort.signal);
  return true;
}

/** A cursor read now, retried until it succeeds; concurrent calls share one. */
export function catchUp(s) {
  if (s.halted) return Promise.resolve();
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
    } while (s.catchAgain && s.alive && !s.halted);
    s.catching = null;
  })();
  return s.catching;
}

/** Starts (or, after a halt, restarts) the live loop; an older one ends at its next step. */
export function startLive(s) {
  if (!s.alive) return;
  s.halted = null;
  s.runs += 1;
  liveLoop(s, s.runs);
}

const running = (s, run) => s.alive && !s.halted && s.runs === run;

/**
 * WebSocket when the server offers one, else (url null, or a socket that
 * cannot be opened, e.g. a 503 when pushes cannot be registered) long-poll.
 */
async function liveLoop(s, run) {
  if (s.cursor === 0 && !s.messages.size && !s.bootstrapped) {
    s.bootstrapped = true;   // a new device: the conversations first, each one's messages when opened
    if (await bootstrap(s) && s.selected) loadHistory(s, s.conversations.get(s.selected));
  }
  await catchUp(s);
  if (!s.counted && running(s, run)) {
    // Once caught up: the server's unread counts and read positions, and conversations the stream does not name.
    s.counted = true;
    refreshConversations(s);
  }
  let failures = 0;
  while (running(s, run)) {
    let ticket;
    try {
      ticket = await connectTicket(s.auth, { user_id: s.me });
    } catch (err) {
      if (!await waitOut(s, err, failures++)) return;
      continue;
    }
    if (!running(s, run)) return;
    if (!ticket.url) {
      await longPoll(s, run, Infinity);       // this server has no WebSocket at all
      continue;
    }
    const outcome = await runSocket(s, ticket);
    if (!running(s, run)) return;
    if (!outcome.opened) {
      // Refused or unreachable: long-poll for a while, then offer the socket another chance.
      failures += 1;
      await longPoll(s, run, Math.min(5, failures) * 60 * 1000);
    } else {
      failures = outcome.stable ? 0 : failures + 1;
      const wait = backoff(failures);
      s.view.setConnection(s, 'connecting', `Live connection lost; reconnecting in ${seconds(wait)} s.`);
      await sleep(wait, s.abort.signal);
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
      s.view.setConnection(s, 'live', 'Live (WebSocket)');
      catchUp(s);   // whatever arrived while we were not connected
      ping = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send('{"action":"ping"}'); }, PING_EVERY_MS);
      safety = setInterval(() => catchUp(s), SAFETY_READ_MS);
    };
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (_) { return; }
      // {"type": "event", "event"} or, for a message received, {"type": "message", "message", "event"}.
      const ev = frame && frame.event;
      if (!ev || !Number.isInteger(ev.seq)) return;
      applyEvents(s, [ev]).then((gap) => { if (gap) catchUp(s); });
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

async function longPoll(s, run, durationMs) {
  const until = Date.now() + durationMs;
  let attempt = 0;
  s.view.setConnection(s, 'live', 'Live (long-poll)');
  await catchUp(s);
  while (running(s, run) && Date.now() < until) {
    try {
      if (await readPages(s, MAX_WAIT_SECONDS)) {
        // This user's other devices hold every waiting read the server allows: read again a little later.
        s.view.setConnection(s, 'live', 'Live (polling: your other devices hold the waiting reads)');
        await sleep(WAIT_REFUSED_PAUSE_SECONDS * 1000, s.abort.signal);
        attempt = 1;  // says "Live (long-poll)" again once a wait is taken
        continue;
      }
      if (attempt) s.view.setConnection(s, 'live', 'Live (long-poll)');
      attempt = 0;
    } catch (err) {
      if (!await waitOut(s, err, attempt++)) return;
    }
  }
}
