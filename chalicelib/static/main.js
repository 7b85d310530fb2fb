/* The web chat client: plain DOM, ES modules, no framework, no build step.
 *
 *   api.js         the HTTP calls, ApiError, and the contract's retry rule
 *   store.js       profiles (localStorage) and each profile's history (IndexedDB)
 *   session.js     the signed-in profile's state
 *   sync.js        receiving: the cursor, WebSocket frames, long-polls
 *   outbox.js      sending: idempotency keys, retries
 *   view.js        the DOM
 *   controller.js  what the person does
 *   contract.js    error codes and limits, generated from chalicelib/contract.py
 */

import { Controller } from './controller.js';
import { View } from './view.js';

new Controller(new View()).boot();
