/* The web chat client: plain DOM, ES modules, no framework, no build step.
 *
 *   api.js         the HTTP calls, ApiError, and the contract's retry rule
 *   store.js       profiles (localStorage) and each profile's history and people (IndexedDB)
 *   session.js     the signed-in profile's state, and how people are named
 *   sync.js        receiving the stream (/sync): the cursor, WebSocket frames, long-polls
 *   events.js      the stream's events applied: messages, edits, deletions, reads, receipts, members
 *   outbox.js      sending: idempotency keys, retries
 *   people.js      names and handles from /users, kept a day
 *   view.js        the DOM: signing in, the chat
 *   account.js     the Account dialog: link codes, devices, handle and password, deleting
 *   accountview.js the Account dialog's DOM
 *   controller.js  what the person does
 *   helpers.js     keys, handles, device names, back-off, sleeping
 *   contract.js    error codes and limits, generated from chalicelib/contract.py
 */

import { Controller } from './controller.js';
import { View } from './view.js';

new Controller(new View()).boot();
