/* People's names. /users answers the name and handle of up to
 * MAX_USERS_PER_LOOKUP user ids; the answers are kept in the profile's store
 * with when they came, and asked again once older than a day. Someone /users
 * leaves out (the account was deleted, or never was) is kept as deleted and
 * shown as "Deleted account". A nickname given in this browser still wins
 * (session.js).
 */

import { users } from './api.js';
import { MAX_USERS_PER_LOOKUP } from './contract.js';
import { sleep } from './helpers.js';

const FRESH_MS = 24 * 60 * 60 * 1000;
const CHECK_EVERY_MS = 60 * 60 * 1000;

/** The people this session shows: itself, its direct partners, every sender it holds and who joined or left. */
function shown(s) {
  const ids = new Set([s.me]);
  for (const conv of s.conversations.values()) if (conv.kind === 'direct') ids.add(conv.target);
  for (const map of s.messages.values()) {
    for (const record of map.values()) {
      if (record.sender_id) ids.add(record.sender_id);
      if (record.user_id) ids.add(record.user_id);   // a membership line
    }
  }
  return ids;
}

/**
 * Asks /users for those of `ids` never asked or asked more than a day ago
 * (every one of them with `force`). Calls in the same turn share one request.
 */
export function lookUp(s, ids = shown(s), { force = false } = {}) {
  const now = Date.now();
  const wanted = [...ids].filter((id) => {
    const known = s.people.get(id);
    return !s.asking.has(id) && (force || !known || !(now - known.fetched_at < FRESH_MS));
  });
  if (!wanted.length || !s.alive) return;
  if (!s.looking) {
    s.looking = new Set();
    queueMicrotask(() => ask(s));
  }
  for (const id of wanted) s.looking.add(id);
}

/** Now, and every hour while the session lasts (and when the browser comes back online). */
export async function keepFresh(s) {
  while (s.alive) {
    lookUp(s);
    await sleep(CHECK_EVERY_MS, s.abort.signal);
  }
}

async function ask(s) {
  const ids = [...s.looking];
  s.looking = null;
  for (const id of ids) s.asking.add(id);
  try {
    for (let i = 0; i < ids.length && s.alive; i += MAX_USERS_PER_LOOKUP) {
      const chunk = ids.slice(i, i + MAX_USERS_PER_LOOKUP);
      let answer;
      try {
        answer = await users(s.auth, chunk);
      } catch (_) {
        return;   // offline, or refused: asked again at the next message, start or hourly check
      }
      if (!s.alive) return;
      const answered = new Map(answer.users.map((u) => [u.user_id, u]));
      remember(s, chunk.map((id) => (answered.has(id) ? found(answered.get(id))
        : { user_id: id, user_name: null, handle: null, deleted: true, fetched_at: Date.now() })));
    }
  } finally {
    for (const id of ids) s.asking.delete(id);
  }
}

/** Keeps what the server said of these people (from /users, /find_user or /update_account) and shows it. */
export function remember(s, people) {
  for (const person of people) s.people.set(person.user_id, person);
  s.persist({ people });
  s.onPeople(people);
}

/** One person as /users, /find_user or /update_account answers. */
export const found = (user) => ({
  user_id: user.user_id, user_name: user.user_name, handle: user.handle, deleted: false, fetched_at: Date.now(),
});
