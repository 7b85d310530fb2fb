"""The command line: `python -m messaging_client` (or `messaging`).

    register NAME                 make a user; its token goes into the profile
    whoami                        the profile's user id (to give to others)
    send USER_ID TEXT             a direct message
    group create NAME             a group, joined; prints its id
    group join|leave GROUP_ID
    group send GROUP_ID TEXT
    block|unblock USER_ID
    inbox                         conversations with unread counts
    history ID                    a conversation (a user's or a group's id); marks it read
    watch                         prints messages as they arrive (Ctrl-C stops)
    chat ID                       interactive, with a user or a group

--api defaults to http://127.0.0.1:8000 (what `make run` serves); --profile
to "default". Profiles and local stores live in $MESSAGING_HOME or
~/.config/messaging, readable by their owner only. Errors are one line on
stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from . import profiles
from .api import DEFAULT_API, ApiError, Client, Offline
from .messenger import Messenger
from .store import Store, conversation_of

SEND_PATIENCE_SECONDS = 15  # how long one `send` keeps retrying before it leaves the message queued


class Fail(Exception):
    """One line for the user, and the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m messaging_client", description="Messaging from the command line.")
    parser.add_argument("--api", help=f"the API's base URL (default: the profile's, else {DEFAULT_API})")
    parser.add_argument("--profile", default="default", help="which profile (default: default)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("register", help="make a user and keep its token").add_argument("name")
    sub.add_parser("whoami", help="this profile's user id")
    send = sub.add_parser("send", help="send a direct message")
    send.add_argument("user_id")
    send.add_argument("text", nargs="+")
    group = sub.add_parser("group", help="create, join, leave or send to a group")
    gsub = group.add_subparsers(dest="group_command", required=True, metavar="ACTION")
    gsub.add_parser("create").add_argument("name")
    gsub.add_parser("join").add_argument("group_id")
    gsub.add_parser("leave").add_argument("group_id")
    gsend = gsub.add_parser("send")
    gsend.add_argument("group_id")
    gsend.add_argument("text", nargs="+")
    for name in ("block", "unblock"):
        sub.add_parser(name, help=f"{name} a user").add_argument("user_id")
    sub.add_parser("inbox", help="conversations with unread counts")
    history = sub.add_parser("history", help="a conversation's messages")
    history.add_argument("id", help="the other user's id, or the group's")
    history.add_argument("--limit", type=int, default=50)
    sub.add_parser("watch", help="print messages as they arrive")
    chat = sub.add_parser("chat", help="chat with a user or a group")
    chat.add_argument("id", help="the other user's id, or the group's")
    return parser


class Session:
    """The profile's client, store and messenger for one command."""

    def __init__(self, profile: profiles.Profile, api: Optional[str]) -> None:
        self.profile = profile
        self.client = Client(api or profile.api, profile.token)
        self.store = Store(profile.store_path, profile.user_id)
        self.messenger = Messenger(self.client, self.store, profile.user_id)

    def close(self) -> None:
        self.client.close()
        self.store.close()

    def conversation(self, target: str) -> str:
        """'group:<id>' when the id is a group we know, else 'direct:<id>'."""
        group = f"group:{target}"
        return group if self.store.has_conversation(group) else f"direct:{target}"


def _short(user_id: Optional[str]) -> str:
    return (user_id or "?")[:8]


def _line(item: Dict[str, Any], me: str) -> str:
    when = item["sent_at"][:19].replace("T", " ")
    who = "you" if item["sender_id"] == me else _short(item["sender_id"])
    where = f" in group {_short(item['group_id'])}" if item.get("group_id") else ""
    return f"[{when}] {who}{where}: {item['text']}"


def _session(args: argparse.Namespace) -> Session:
    profile = profiles.load(args.profile)
    if profile is None:
        raise Fail(f"no profile {args.profile!r} yet: run `python -m messaging_client register NAME` first", 2)
    return Session(profile, args.api)


def _send(session: Session, target: str, text: str, *, group: bool) -> str:
    key = session.store.queue("group" if group else "direct", target, text)
    session.messenger.flush_until(time.monotonic() + SEND_PATIENCE_SECONDS)
    state = session.store.outbox_state(key)
    if state["state"] == "sent":
        return f"sent {state['message_id']}"
    if state["state"] == "failed":
        code, message = state["error"].split(": ", 1)  # the outbox keeps "Code: Message"
        raise Fail(f"not sent: {message} ({code})")
    raise Fail(f"not sent yet ({state['error']}); it is kept and goes out with this profile's next command")


def run(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except Fail as fail:
        print(f"error: {fail}", file=sys.stderr)
        return fail.status
    except Offline as error:
        print(f"error: {error.message}; is the server running (make run)?", file=sys.stderr)
        return 1
    except ApiError as error:
        print(f"error: {error.message} ({error.code})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "register":
        api = args.api or DEFAULT_API
        client = Client(api)
        try:
            user = client.register(args.name)
        finally:
            client.close()
        path = profiles.save(profiles.Profile(args.profile, api, user.user_id, user.user_name, user.token))
        print(f"registered {user.user_name}: user id {user.user_id} (profile {args.profile}, {path})")
        return 0
    session = _session(args)
    try:
        return _command(args, session)
    finally:
        session.close()


def _command(args: argparse.Namespace, s: Session) -> int:
    me = s.profile.user_id
    if args.command == "whoami":
        print(f"{s.profile.user_name} {me}")
    elif args.command == "send":
        print(_send(s, args.user_id, " ".join(args.text), group=False))
    elif args.command == "group":
        if args.group_command == "create":
            group_id = s.client.create_group(args.name)
            s.client.update_group(me, group_id, True)
            s.store.open_conversation("group", group_id)
            print(f"created group {args.name}: group id {group_id} (you are a member; others join with it)")
        elif args.group_command in ("join", "leave"):
            member = s.client.update_group(me, args.group_id, args.group_command == "join")
            if member:
                s.store.open_conversation("group", args.group_id)
            print(f"{'joined' if member else 'left'} group {args.group_id}")
        else:
            print(_send(s, args.group_id, " ".join(args.text), group=True))
    elif args.command in ("block", "unblock"):
        blocked = s.client.block(me, args.user_id, args.command == "block")
        print(f"{'blocked' if blocked else 'unblocked'} {args.user_id}")
    elif args.command == "inbox":
        s.messenger.flush()
        s.messenger.catch_up()
        conversations = s.store.conversations()
        if not conversations:
            print("no conversations yet")
        for c in conversations:
            label = f"group {c.target}" if c.kind == "group" else f"user {c.target}"
            last = f"  last: {c.last_text[:40]}" if c.last_text else ""
            print(f"{label}  {c.unread} unread{last}")
    elif args.command == "history":
        s.messenger.catch_up()
        conversation = s.conversation(args.id)
        for item in s.store.history(conversation, args.limit):
            print(_line(item, me))
        s.store.mark_read(conversation)
    elif args.command == "watch":
        _watch(s, None)
    elif args.command == "chat":
        _chat(s, s.conversation(args.id))
    return 0


def _watch(s: Session, conversation: Optional[str]) -> None:
    """Print what arrives (in `conversation`, or everything) until Ctrl-C."""
    me = s.profile.user_id
    if conversation is None:
        print(f"watching as {s.profile.user_name} ({me}); Ctrl-C stops", flush=True)

    def show(item: Dict[str, Any]) -> None:
        if conversation is None or conversation_of(item, me) == conversation:
            print(_line(item, me), flush=True)
            if conversation is not None:
                s.store.mark_read(conversation)

    s.messenger.run(show)


def _chat(s: Session, conversation: str) -> None:
    kind, _, target = conversation.partition(":")
    s.store.open_conversation(kind, target)
    s.messenger.catch_up()
    for item in s.store.history(conversation, 20):
        print(_line(item, s.profile.user_id))
    s.store.mark_read(conversation)

    def listen() -> None:
        try:
            _watch(s, conversation)
        except ApiError as error:  # a refusal the sync loop does not retry: one line, not a traceback
            print(f"error: {error.message} ({error.code}); no longer receiving", file=sys.stderr, flush=True)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    print("type a message and press Enter; Ctrl-D or /quit ends", flush=True)
    for line in sys.stdin:
        text = line.rstrip("\n")
        if text == "/quit":
            break
        if text.strip():
            try:
                print(_send(s, target, text, group=kind == "group"), flush=True)
            except Fail as fail:
                print(f"error: {fail}", flush=True)
    s.messenger.stop()


def main() -> None:
    sys.exit(run())
