"""A Python client for the messaging API: one typed method per endpoint
(api.Client), a local SQLite store built from the user's stream (/sync):
every message of both sides with its edits and deletion, conversations with
the server's read state and unread counts, and read receipts (store.Store),
an outbox that delivers each message exactly once across restarts, and a
sync loop over WebSocket or long-poll (messenger.Messenger; edit, delete and
mark_read too), with accounts, sessions on several devices and
people's names (Client.login, link, sessions, logout, users, find_user;
Messenger.names). The command line is `python -m messaging_client`."""
from .api import ApiError, Client, Offline, SignedIn, Unauthorized, User
from .messenger import Messenger
from .store import Store

__all__ = ["ApiError", "Client", "Messenger", "Offline", "SignedIn", "Store", "Unauthorized", "User"]
