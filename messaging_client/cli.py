"""The command line: `python -m messaging_client` (or `messaging`).

    register NAME [--handle H]    make a user; its token goes into the profile. With a handle, others can
                                  find you and you are asked for a password to sign in on other devices
    login HANDLE                  sign this profile in with a handle and password (asked for, never an argument)
    link-code                     a one-time code for a new device (valid 5 minutes)
    link CODE                     sign this profile in with a code shown by `link-code` on a signed-in device
    whoami                        the profile's user id (to give to others) and handle
    sessions                      your signed-in devices; * marks this one
    logout [SESSION_ID | --all]   sign out this device, another (an id from `sessions`), or all of them
    account name NAME             change your name (others see it in place of your id)
    account handle HANDLE         change your handle (asks for the password, when the account has one)
    account password              set or change the password; signs out your other devices
    account delete [--yes]        delete the account for good, and this profile with its local store
    account receipts on|off       whether others see that you read their messages (receipts)
    find HANDLE                   who has this handle
    send USER TEXT [--file PATH]  a direct message; USER is a user id or @handle. --file (again for each
                                  file, up to 10) attaches a file; the text may then be left out
    group create NAME             a group, joined; prints its id
    group join|leave GROUP_ID
    group send GROUP_ID TEXT [--file PATH]
    block|unblock USER
    edit MESSAGE_ID TEXT          change the text of a message you sent (its id as `send` printed it,
                                  or `history --ids` shows it: the start of it will do)
    delete MESSAGE_ID             delete a message you sent, for everyone
    download ATTACHMENT_ID [--out PATH]
                                  save a file a message carries (its id as `history --ids` shows it, or
                                  the start of it), as its name in this folder unless --out says where
    inbox                         conversations with unread counts (this device's store)
    conversations                 conversations with unread counts, as the server has them
    history ID [--ids]            a conversation (a user's id or @handle, or a group's id); marks it read
    watch                         prints messages, edits and deletions as they arrive (Ctrl-C stops);
                                  marks nothing read
    chat ID                       interactive, with a user or a group; marks what it shows read

Everything comes from the user's stream (/sync), so messages you send from
another device show here too (as "you"), an edited message shows its new
text with "(edited)" and a deleted one "[deleted]"; the files a message
carries show as "[file: NAME (SIZE)]". Reading (history, chat)
tells the server, so your other devices' unread counts follow and, in a
direct conversation, the other person gets a read receipt unless you turned
them off (`account receipts off`).

Passwords are asked for without echo (getpass) or read from stdin with
--password-stdin, never taken as arguments (those end up in shell history
and in `ps`). Messages show people's names and handles (from /users,
remembered for a day) instead of their ids.

--api defaults to the profile's, else http://127.0.0.1:8000 (what `make run`
serves); --profile to "default". Profiles and local stores live in
$MESSAGING_HOME or ~/.config/messaging, readable by their owner only. Errors
are one line on stderr and a non-zero exit; a profile whose device was
signed out says so and how to sign in again.
"""
from __future__ import annotations

import argparse
import getpass
import os
import re
import socket
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

from . import contract, profiles
from .api import DEFAULT_API, ApiError, Client, Offline, Unauthorized
from .messenger import Messenger, outbox_file
from .store import Name, OutboxFile, Store, StoreOfAnotherUser, conversation_of

SHORT_ID_CHARS = 4  # the fewest characters of a message id `edit` and `delete` take

SEND_PATIENCE_SECONDS = 15  # how long one `send` keeps retrying before it leaves the message queued
PROG = "python -m messaging_client"
_HANDLE = re.compile(r"@?[A-Za-z][A-Za-z0-9_]*")
T = TypeVar("T")


class Fail(Exception):
    """One line for the user, and the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Messaging from the command line.")
    parser.add_argument("--api", help=f"the API's base URL (default: the profile's, else {DEFAULT_API})")
    parser.add_argument("--profile", default="default", help="which profile (default: default)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    register = sub.add_parser("register", help="make a user and keep its token")
    register.add_argument("name")
    register.add_argument("--handle", help="a handle others find you by, and you sign in with (3-32: a-z, 0-9, _)")
    _password_stdin(register, "the password (with --handle; an empty line for none) as the first line of stdin")
    _device(register)
    login = sub.add_parser("login", help="sign in with a handle and password")
    login.add_argument("handle")
    _password_stdin(login, "the password as the first line of stdin instead of asking")
    _device(login)
    sub.add_parser("link-code", help="a one-time code that signs a new device in as you")
    link = sub.add_parser("link", help="sign in with a code from `link-code` on a signed-in device")
    link.add_argument("code")
    _device(link)
    sub.add_parser("whoami", help="this profile's user id")
    sub.add_parser("sessions", help="your signed-in devices")
    logout = sub.add_parser("logout", help="sign out this device, another one, or all of them")
    which = logout.add_mutually_exclusive_group()
    which.add_argument("session_id", nargs="?", help="a session id (or its start) from `sessions`")
    which.add_argument("--all", action="store_true", help="every device, this one too")

    account = sub.add_parser("account", help="change your name, handle or password, or delete the account")
    asub = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    asub.add_parser("name", help="change your name").add_argument("name")
    handle = asub.add_parser("handle", help="change your handle")
    handle.add_argument("handle")
    _password_stdin(handle, "the current password as the first line of stdin")
    password = asub.add_parser("password", help="set or change your password (signs out your other devices)")
    _password_stdin(password, "the current password (an empty line if none) and the new one, a line each")
    delete = asub.add_parser("delete", help="delete your account for good")
    _password_stdin(delete, "the password as the first line of stdin")
    delete.add_argument("--yes", action="store_true", help="do not ask to confirm")
    receipts = asub.add_parser("receipts", help="whether others see that you read their messages")
    receipts.add_argument("setting", choices=("on", "off"))

    sub.add_parser("find", help="find a user by handle").add_argument("handle")
    send = sub.add_parser("send", help="send a direct message")
    send.add_argument("user", metavar="USER", help="a user id or @handle")
    _message(send)
    group = sub.add_parser("group", help="create, join, leave or send to a group")
    gsub = group.add_subparsers(dest="group_command", required=True, metavar="ACTION")
    gsub.add_parser("create").add_argument("name")
    gsub.add_parser("join").add_argument("group_id")
    gsub.add_parser("leave").add_argument("group_id")
    gsend = gsub.add_parser("send")
    gsend.add_argument("group_id")
    _message(gsend)
    for name in ("block", "unblock"):
        sub.add_parser(name, help=f"{name} a user").add_argument("user", metavar="USER", help="a user id or @handle")
    edit = sub.add_parser("edit", help="change the text of a message you sent")
    edit.add_argument("message_id", help="its id as `send` printed it (or its start: 4 characters or more)")
    edit.add_argument("text", nargs="+")
    delete_message = sub.add_parser("delete", help="delete a message you sent, for everyone")
    delete_message.add_argument("message_id", help="its id as `send` printed it (or its start: 4 characters or more)")
    download = sub.add_parser("download", help="save a file a message carries")
    download.add_argument("attachment_id", help="its id as `history --ids` shows it (or its start: 4 characters"
                                                " or more)")
    download.add_argument("--out", help="the file to write (replaced if there), or a folder to write it in"
                                        " (default: the file's own name, in this folder)")
    sub.add_parser("inbox", help="conversations with unread counts")
    sub.add_parser("conversations", help="conversations with unread counts, as the server has them")
    history = sub.add_parser("history", help="a conversation's messages")
    history.add_argument("id", help="the other user's id or @handle, or the group's id")
    history.add_argument("--limit", type=int, default=50)
    history.add_argument("--ids", action="store_true", help="start each line with the message's short id")
    sub.add_parser("watch", help="print messages, edits and deletions as they arrive")
    chat = sub.add_parser("chat", help="chat with a user or a group")
    chat.add_argument("id", help="the other user's id or @handle, or the group's id")
    return parser


def _message(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="*", help="the text (may be left out with --file)")
    parser.add_argument("--file", action="append", default=[], metavar="PATH", dest="files",
                        help=f"attach a file (again for each, up to {contract.MAX_ATTACHMENTS_PER_MESSAGE})")
    parser.add_argument("--type", metavar="MEDIA_TYPE", dest="content_type",
                        help="the files' type, e.g. image/png (default: from each file's name)")


def _password_stdin(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--password-stdin", action="store_true", help=f"read {what} (for scripts)")


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="this device's name in `sessions` (default: cli on <hostname>)")


def default_device() -> str:
    return f"cli on {socket.gethostname() or 'this computer'}"[:contract.MAX_DEVICE_NAME_CHARS]


class Session:
    """The profile's client, store and messenger for one command."""

    def __init__(self, profile: profiles.Profile, api: Optional[str]) -> None:
        self.profile = profile
        self.client = Client(api or profile.api, profile.token)
        try:
            self.store = Store(profile.store_path, profile.user_id)
        except StoreOfAnotherUser as error:
            self.client.close()
            raise Fail(f"{error}: move it away to use profile {profile.name}") from None
        self.messenger = Messenger(self.client, self.store, profile.user_id)

    def close(self) -> None:
        self.client.close()
        self.store.close()

    def user(self, target: str) -> str:
        """A user id, or the id of the user with a handle (`@name`, or a bare name that is not an id)."""
        if _is_id(target):
            return target
        if not _HANDLE.fullmatch(target):
            raise Fail(f"{target!r} is neither a user id nor a handle (@name)")
        return self.messenger.find(target).user_id

    def conversation(self, target: str) -> str:
        """'group:<id>' when the id is a group we know, else 'direct:<user>' (an id or a handle)."""
        group = f"group:{target}"
        return group if self.store.has_conversation(group) else f"direct:{self.user(target)}"


def _is_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _short(user_id: Optional[str]) -> str:
    return (user_id or "?")[:8]


def _who(user_id: str, names: Dict[str, Name]) -> str:
    """How a user is shown: name (@handle), name, "deleted account", or by id when /users could not say."""
    name = names.get(user_id)
    if name is None:
        return f"user {_short(user_id)}"
    if name.deleted:
        return "deleted account"
    return f"{name.user_name} (@{name.handle})" if name.handle else f"{name.user_name}"


def _label(user_id: str, names: Dict[str, Name]) -> str:
    """A user in the inbox: with what `history`, `chat` and `send` take (the @handle, else the id)."""
    name = names.get(user_id)
    if name is None:
        return f"user {user_id}"
    if name.handle and not name.deleted:
        return _who(user_id, names)
    return f"{_who(user_id, names)} (user {user_id})"


def _line(item: Dict[str, Any], me: str, names: Dict[str, Name], *, ids: bool = False) -> str:
    when = item["sent_at"][:19].replace("T", " ")
    who = "you" if item["sender_id"] == me else _who(item["sender_id"], names)
    where = f" in group {_short(item['group_id'])}" if item.get("group_id") else ""
    short = f"{item['message_id'][:8]} " if ids else ""
    return f"{short}[{when}] {who}{where}: {_text(item, ids=ids)}"


def _text(item: Dict[str, Any], *, ids: bool = False) -> str:
    """A message's text as shown: "[deleted]" once deleted, marked "(edited)"
    once edited, then each file it carries: "[file: NAME (SIZE)]" (with
    `ids`, "[file ID: NAME (SIZE)]", ID the start of what `download` takes)."""
    if item.get("deleted") or item.get("text") is None:
        return "[deleted]"
    text = f"{item['text']} (edited)" if item.get("edited_at") else str(item["text"])
    files = [_file(a, ids=ids) for a in item.get("attachments") or []]
    return " ".join(part for part in (text, *files) if part)


def _file(attachment: Dict[str, Any], *, ids: bool = False) -> str:
    short = f" {attachment['attachment_id'][:8]}" if ids else ""
    return f"[file{short}: {attachment.get('file_name') or 'unnamed'} ({_size(int(attachment.get('size') or 0))})]"


def _size(size: float) -> str:
    """Bytes as shown: 512 B, 70.3 KiB, 10.0 MiB."""
    if size < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def _last(text: Optional[str], edited: bool, deleted: bool, files: int = 0) -> str:
    """A conversation's last message in a list: its start (or, without text, its files)."""
    if deleted:
        return "  last: [deleted]"
    if not text:
        return f"  last: [{files} file{'s' if files != 1 else ''}]" if files else ""
    return f"  last: {text[:40]}" + (" (edited)" if edited else "")


def _command_line(profile: str, *words: str) -> str:
    """How to run a command on this profile, for a hint."""
    chosen = "" if profile == "default" else f" --profile {profile}"
    return f"`{PROG}{chosen} {' '.join(words)}`"


def _sign_in_again(profile: str, handle: Optional[str]) -> str:
    return (f"sign in again with {_command_line(profile, 'login', handle or 'HANDLE')}, or "
            f"{_command_line(profile, 'link', 'CODE')} with a code from `link-code` on a signed-in device")


def _profile(args: argparse.Namespace) -> profiles.Profile:
    profile = profiles.load(args.profile)
    if profile is None:
        raise Fail(f"no profile {args.profile!r} yet: run `{PROG} register NAME` first (or `login HANDLE`, or"
                   f" `link CODE`, for an account you have)", 2)
    return profile


def _session(args: argparse.Namespace) -> Session:
    profile = _profile(args)
    if profile.token is None:
        raise Fail(f"profile {args.profile} is signed out: {_sign_in_again(args.profile, profile.handle)}")
    return Session(profile, args.api)


def _files(paths: Sequence[str], content_type: Optional[str]) -> List[OutboxFile]:
    """The files a send carries, checked here: each a readable file with something in it."""
    if len(paths) > contract.MAX_ATTACHMENTS_PER_MESSAGE:
        raise Fail(f"at most {contract.MAX_ATTACHMENTS_PER_MESSAGE} files a message")
    files = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.is_file():
            raise Fail(f"{given}: no such file" if not path.exists() else f"{given} is not a file")
        if not os.access(path, os.R_OK):
            raise Fail(f"{given}: cannot be read (permission denied)")
        if path.stat().st_size == 0:
            raise Fail(f"{given} is empty")
        files.append(outbox_file(path, content_type=content_type))
    return files


def _uploading(name: str, done: int, total: int) -> None:
    """Upload progress on stderr, when it is a terminal: one line, rewritten."""
    if sys.stderr.isatty():
        end = "\n" if done >= total else ""
        print(f"\ruploading {name}: {done * 100 // max(total, 1)}% of {_size(total)}", end=end, file=sys.stderr,
              flush=True)


def _send(session: Session, target: str, text: str, *, group: bool, files: Sequence[OutboxFile] = ()) -> str:
    if not text and not files:
        raise Fail("nothing to send: give a text, or a file with --file")
    key = session.store.queue("group" if group else "direct", target, text, files)
    session.messenger.on_upload = _uploading
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
    except Unauthorized as error:
        profile = profiles.load(args.profile)
        print(f"error: {_signed_out(args.profile, profile.handle if profile else None, error)}", file=sys.stderr)
        return 1
    except ApiError as error:
        print(f"error: {_refused(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _signed_out(profile: str, handle: Optional[str], error: ApiError) -> str:
    """The line for a token the server no longer takes: this device was signed
    out (from another, by a new password, or the account deleted)."""
    return f"profile {profile} was signed out: {_sign_in_again(profile, handle)} ({error.code})"


def _refused(error: ApiError) -> str:
    if error.code == "RateLimited" and error.retry_after:
        return f"{error.message}; try again in {_duration(int(error.retry_after))} ({error.code})"
    return f"{error.message} ({error.code})"


def _duration(seconds: int) -> str:
    if seconds >= 120:
        return f"{(seconds + 59) // 60} minutes"
    return f"{seconds} seconds"


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("register", "login", "link"):
        return _sign_in(args)
    if args.command == "whoami":  # the profile's own, signed in or not: no call
        profile = _profile(args)
        print(f"{profile.user_name} {profile.user_id}" + (f" @{profile.handle}" if profile.handle else ""))
        return 0
    session = _session(args)
    try:
        return _command(args, session)
    finally:
        session.close()


# --------------------------------------------------------------------------- signing in


def _sign_in(args: argparse.Namespace) -> int:
    """register, login and link: a new session, written into the profile."""
    existing = profiles.load(args.profile)
    if args.command == "register" and existing is not None:
        raise Fail(f"profile {args.profile} already holds {existing.user_name}'s account (user id"
                   f" {existing.user_id}): choose another with --profile NAME")
    api = args.api or (existing.api if existing is not None else DEFAULT_API)
    device = args.device or default_device()
    if args.command == "register" and args.password_stdin and not args.handle:
        raise Fail("a password is for signing in with a handle: give --handle too")
    client = Client(api, retries=0)  # none of these is safe to repeat; a 429 is answered at once, with its wait
    password: Optional[str] = None
    try:
        if args.command == "register":
            password = _new_password(args, optional=True) if args.handle else None
            signed = client.register(args.name, handle=args.handle, password=password, device_name=device)
        elif args.command == "login":
            signed = client.login(args.handle, _password(args, "Password: "), device_name=device)
        else:
            signed = client.link(args.code, device_name=device)
        if existing is not None and existing.user_id != signed.user_id:
            _forget_session(client, signed.token)  # this profile cannot keep it
            raise Fail(f"profile {args.profile} holds {existing.user_name}'s account (user id {existing.user_id}),"
                       f" not {signed.user_name}'s: sign in with --profile NAME (a new profile) instead")
    finally:
        client.close()
    if existing is not None and existing.token and existing.token != signed.token:
        _forget_session(Client(api), existing.token)  # the profile's old session, if still live, is now unused
    path = profiles.save(profiles.Profile(args.profile, api, signed.user_id, signed.user_name, signed.token,
                                          signed.handle, signed.session_id))
    who = f"{signed.user_name} (@{signed.handle})" if signed.handle else signed.user_name
    verb = "registered" if args.command == "register" else "signed in as"
    print(f"{verb} {who}: user id {signed.user_id} (profile {args.profile}, {path})")
    if args.command == "register" and args.handle and password is None:
        print("no password: sign in on other devices with a code from `link-code`")
    return 0


def _forget_session(client: Client, token: str) -> None:
    """Sign out a session this device will not keep; whatever the answer."""
    client.token = token
    try:
        client.logout()
    except ApiError:
        pass
    finally:
        client.close()


def _password(args: argparse.Namespace, prompt: str) -> str:
    """A password from stdin's next line (--password-stdin), else asked for without echo."""
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise Fail("--password-stdin: nothing on stdin")
        return line.rstrip("\r\n")
    with warnings.catch_warnings():  # getpass falls back to an echoing stdin when there is no terminal
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except getpass.GetPassWarning:
            raise Fail("no terminal to ask for the password on: give it with --password-stdin") from None
        except EOFError:
            raise Fail("no password given") from None


def _new_password(args: argparse.Namespace, *, optional: bool = False) -> Optional[str]:
    """A new password: from stdin, or asked for twice. `optional`: asked for,
    an empty answer is none (the account is then signed in elsewhere with link codes)."""
    if args.password_stdin:
        password = _password(args, "")
    else:
        password = _password(args, "Password, to sign in on other devices (Enter for none): " if optional
                             else "New password: ")
        if password and _password(args, "Again: ") != password:
            raise Fail("the two passwords differ")
    if optional and not password:
        return None
    if not contract.MIN_PASSWORD_CHARS <= len(password) <= contract.MAX_PASSWORD_CHARS:
        raise Fail(f"a password is {contract.MIN_PASSWORD_CHARS}-{contract.MAX_PASSWORD_CHARS} characters")
    return password


def _asking_if_needed(args: argparse.Namespace, parameter: str, given: Optional[str],
                      call: Callable[[Optional[str]], T]) -> T:
    """`call` with the password `given` on stdin, or none; refused for want of
    it (a BadRequest whose message names `parameter` first) when none was
    given on stdin, it is asked for and `call` made again."""
    try:
        return call(given)
    except ApiError as error:
        if args.password_stdin or error.code != "BadRequest" or not error.message.startswith(f"{parameter}:"):
            raise
    return call(_password(args, "Password: " if parameter == "password" else "Current password: "))


# --------------------------------------------------------------------------- the other commands


def _command(args: argparse.Namespace, s: Session) -> int:
    me = s.profile.user_id
    if args.command == "link-code":
        code = s.client.link_code()
        print(f"link code: {code.code} (works once, for {_duration(code.expires_in)})")
        print(f"on the new device: {PROG} --profile NAME link {code.code}")
    elif args.command == "sessions":
        for each in s.client.sessions():
            since = each.created_at[:16].replace("T", " ")
            mark, this = ("*", "  (this device)") if each.current else (" ", "")
            print(f"{mark} {each.session_id}  since {since}  {each.device_name}{this}")
    elif args.command == "logout":
        _logout(args, s)
    elif args.command == "account":
        _account(args, s)
    elif args.command == "find":
        user = s.messenger.find(args.handle)
        print(f"{user.user_name} (@{user.handle}): user id {user.user_id}")
    elif args.command == "send":
        files = _files(args.files, args.content_type)
        print(_send(s, s.user(args.user), " ".join(args.text), group=False, files=files))
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
            files = _files(args.files, args.content_type)
            print(_send(s, args.group_id, " ".join(args.text), group=True, files=files))
    elif args.command in ("block", "unblock"):
        user_id = s.user(args.user)
        blocked = s.client.block(me, user_id, args.command == "block")
        print(f"{'blocked' if blocked else 'unblocked'} {args.user}")
    elif args.command in ("edit", "delete"):
        message_id = _own_message(s, args.message_id)
        if args.command == "edit":
            s.messenger.edit(message_id, " ".join(args.text))
            print(f"edited {message_id}")
        else:
            s.messenger.delete(message_id)
            print(f"deleted {message_id}")
    elif args.command == "download":
        _download(s, args.attachment_id, args.out)
    elif args.command == "inbox":
        s.messenger.flush()
        s.messenger.sync()
        conversations = s.store.conversations()
        if not conversations:
            print("no conversations yet")
        names = s.messenger.names([c.target for c in conversations if c.kind == "direct"])
        for c in conversations:
            label = f"group {c.target}" if c.kind == "group" else _label(c.target, names)
            print(f"{label}  {c.unread} unread{_last(c.last_text, c.last_edited, c.last_deleted, c.last_files)}")
    elif args.command == "conversations":
        _conversations(s)
    elif args.command == "history":
        s.messenger.sync()
        _history(s, s.conversation(args.id), args.limit, ids=args.ids)
    elif args.command == "watch":
        _watch(s, None)
    elif args.command == "chat":
        _chat(s, s.conversation(args.id))
    return 0


def _own_message(s: Session, given: str) -> str:
    """A message id, or the start of the id of one message this user sent (as the store knows them)."""
    if _is_id(given):
        return given.lower()
    if len(given) < SHORT_ID_CHARS or not re.fullmatch(r"[0-9A-Fa-f-]+", given):
        raise Fail(f"{given!r} is not a message id (or its start: {SHORT_ID_CHARS} characters or more)")
    s.messenger.sync()  # messages sent from other devices too
    matches = s.store.own_messages_starting(given)
    if len(matches) != 1:
        raise Fail(f"{'no' if not matches else 'more than one'} message you sent starts with {given!r}:"
                   f" `history --ids` shows them")
    return matches[0]


def _download(s: Session, given: str, out: Optional[str]) -> None:
    """Save a file a message carries: by its id (or the start of one the store
    holds), as its own name (made safe) in this folder unless `out` says where."""
    if _is_id(given):
        attachment_id = given.lower()
        known = s.store.attachments_starting(attachment_id)
        if not known:  # perhaps in a message not read yet: for its name
            s.messenger.sync()
            known = s.store.attachments_starting(attachment_id)
    else:
        if len(given) < SHORT_ID_CHARS or not re.fullmatch(r"[0-9A-Fa-f-]+", given):
            raise Fail(f"{given!r} is not an attachment id (or its start: {SHORT_ID_CHARS} characters or more)")
        s.messenger.sync()
        known = s.store.attachments_starting(given)
        if len(known) != 1:
            raise Fail(f"{'no' if not known else 'more than one'} file of your messages has an id starting with"
                       f" {given!r}: `history --ids` shows them")
        attachment_id = known[0]["attachment_id"]
    name = _safe_name(known[0].get("file_name") if known else None, attachment_id)
    if out is None:
        path = Path(name)
        if path.exists():
            raise Fail(f"{path} exists already: say where to save it with --out PATH")
    else:
        path = Path(out).expanduser()
        if path.is_dir():
            path = path / name
    try:
        size = s.client.download(attachment_id, path, progress=lambda done, total: _downloading(name, done, total))
    except OSError as error:
        raise Fail(f"cannot write {path}: {error.strerror or type(error).__name__}") from None
    print(f"saved {path} ({_size(size)})")


def _safe_name(file_name: Optional[str], attachment_id: str) -> str:
    """A file name as someone else gave it, safe to write here: no folders,
    no control characters, not hidden; the attachment id when nothing is left."""
    name = "".join(c for c in (file_name or "").replace("\\", "/").split("/")[-1] if c.isprintable())
    name = name.strip().lstrip(".").strip()
    return name[:200] or attachment_id


def _downloading(name: str, done: int, total: int) -> None:
    if sys.stderr.isatty() and total:
        end = "\n" if done >= total else ""
        print(f"\rdownloading {name}: {done * 100 // total}% of {_size(total)}", end=end, file=sys.stderr,
              flush=True)


def _conversations(s: Session) -> None:
    """The server's list of the user's conversations (/conversations), most recent first."""
    me = s.profile.user_id
    listed: List[Dict[str, Any]] = []
    before: Optional[int] = None
    while True:
        page = s.client.conversations(limit=contract.MAX_CONVERSATIONS, before=before)
        listed += page.conversations
        if page.next_before is None or not page.conversations:
            break
        before = page.next_before
    if not listed:
        print("no conversations yet")
    names = s.messenger.names([c["id"] for c in listed if c["kind"] == "direct" and c["id"] != me])
    for c in listed:
        if c["kind"] == "group":
            label = f"group {c['name']} ({c['id']})" if c.get("name") else f"group {c['id']}"
        else:
            label = "notes to self" if c["id"] == me else _label(c["id"], names)
        last = c.get("last_message")
        shown = _last(last.get("text"), bool(last.get("edited_at")), bool(last.get("deleted")),
                      len(last.get("attachments") or [])) if last else ""
        print(f"{label}  {c['unread']} unread{shown}")


def _logout(args: argparse.Namespace, s: Session) -> None:
    target: Optional[str] = args.session_id
    this_device = args.all or target is None
    if target is not None:  # an id, or its start: one of the signed-in sessions `sessions` lists
        matches = [x for x in s.client.sessions() if x.session_id.startswith(target.lower())]
        if len(matches) != 1:
            raise Fail(f"{'no' if not matches else 'more than one'} signed-in session of yours starts with"
                       f" {target!r}: `sessions` lists them")
        target, this_device = matches[0].session_id, matches[0].current
    try:
        revoked = s.client.logout(None if this_device else target, everywhere=args.all)
    except Unauthorized:
        if not this_device:
            raise
        revoked = 0  # signed out already (perhaps by this very call, its answer lost)
    if this_device:
        profiles.save(profiles.Profile(s.profile.name, s.profile.api, s.profile.user_id, s.profile.user_name, None,
                                       s.profile.handle, None))
        others = f" and {revoked - 1} other device{'s' if revoked != 2 else ''}" if args.all and revoked > 1 else ""
        print(f"signed out this device{others} (profile {s.profile.name});"
              f" {_sign_in_again(s.profile.name, s.profile.handle)}")
    else:
        print(f"signed out session {target}" if revoked else f"session {target} was signed out already")


def _account(args: argparse.Namespace, s: Session) -> None:
    profile, client = s.profile, s.client
    if args.account_command == "name":
        user = client.update_account(user_name=args.name)
        print(f"your name is now {user.user_name}")
    elif args.account_command == "handle":
        current = _password(args, "") if args.password_stdin else None
        user = _asking_if_needed(args, "current_password", current,
                                 lambda password: client.update_account(handle=args.handle, current_password=password))
        print(f"your handle is now @{user.handle}")
    elif args.account_command == "password":
        current = (_password(args, "") or None) if args.password_stdin else None
        new = _new_password(args)
        user = _asking_if_needed(args, "current_password", current,
                                 lambda password: client.update_account(password=new, current_password=password))
        print("password changed; your other devices were signed out")
    elif args.account_command == "receipts":
        user = client.update_account(read_receipts=args.setting == "on")
        print("read receipts are on: others see when you have read their messages" if args.setting == "on"
              else "read receipts are off: others no longer see when you have read their messages")
    else:
        _delete(args, s)
        return
    profiles.save(profiles.Profile(profile.name, profile.api, profile.user_id, user.user_name, profile.token,
                                   user.handle, profile.session_id))


def _delete(args: argparse.Namespace, s: Session) -> None:
    name = s.profile.user_name
    if not args.yes:
        if args.password_stdin or not sys.stdin.isatty():
            raise Fail("deleting an account cannot be undone: confirm with --yes")
        if input(f"delete {name}'s account for good? type its name to confirm: ").strip() != name:
            raise Fail("not deleted")
    _asking_if_needed(args, "password", _password(args, "") if args.password_stdin else None, s.client.delete_account)
    s.close()
    profiles.remove(s.profile.name)
    print(f"deleted {name}'s account; profile {s.profile.name} and its local store are removed")


# --------------------------------------------------------------------------- live


def _history(s: Session, conversation: str, limit: int, *, ids: bool = False) -> None:
    """Print the conversation's last `limit` messages, with their senders' names, and mark it read."""
    me = s.profile.user_id
    items = s.store.history(conversation, limit)
    names = s.messenger.names([i["sender_id"] for i in items if i["sender_id"] != me])
    for item in items:
        print(_line(item, me, names, ids=ids))
    _mark_read(s, conversation)


def _mark_read(s: Session, conversation: str) -> None:
    """Tell the server the conversation is read as far as shown (only forward).
    What the rule would retry (offline, 503) is left for the next time: it
    is not worth failing what was shown."""
    try:
        s.messenger.mark_read(conversation)
    except ApiError as error:
        if isinstance(error, Unauthorized) or not error.retryable(idempotent=True):
            raise


def _shown(s: Session, event: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """What a new event shows: a message in its current state (a new one, an
    edited one, a deleted one), else None (reads, receipts, memberships)."""
    kind = event.get("type", "message")
    if kind == "message":
        return event
    if kind not in ("edit", "delete"):
        return None
    stored = s.store.message(event["message_id"])
    if stored is not None:
        return stored
    return {**event, "sent_at": event.get("edited_at") or "", "deleted": kind == "delete"}


def _watch(s: Session, conversation: Optional[str]) -> None:
    """Print what arrives (in `conversation`, or everything) until Ctrl-C; in a
    conversation (chat), mark what it prints read."""
    me = s.profile.user_id
    if conversation is None:
        print(f"watching as {s.profile.user_name} ({me}); Ctrl-C stops", flush=True)

    def show(event: Dict[str, Any]) -> None:
        item = _shown(s, event)
        if item is None or (conversation is not None
                            and (item.get("conversation") or conversation_of(item, me)) != conversation):
            return
        names = s.messenger.names([item["sender_id"]]) if item["sender_id"] != me else {}
        print(_line(item, me, names), flush=True)
        if conversation is not None:
            _mark_read(s, conversation)

    s.messenger.run(on_event=show)


LISTENER_STOP_SECONDS = 10  # a WebSocket read returns within 1 s of a stop; a long-poll may not


def _chat(s: Session, conversation: str) -> None:
    kind, _, target = conversation.partition(":")
    s.store.open_conversation(kind, target)
    s.messenger.sync()
    _history(s, conversation, 20)

    def listen() -> None:
        try:
            _watch(s, conversation)
        except Unauthorized as error:
            print(f"error: {_signed_out(s.profile.name, s.profile.handle, error)}; no longer receiving",
                  file=sys.stderr, flush=True)
        except ApiError as error:  # a refusal the sync loop does not retry: one line, not a traceback
            print(f"error: {_refused(error)}; no longer receiving", file=sys.stderr, flush=True)

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
            except Unauthorized as error:
                print(f"error: {_signed_out(s.profile.name, s.profile.handle, error)}", flush=True)
            except Fail as fail:
                print(f"error: {fail}", flush=True)
    s.messenger.stop()
    # Let the listener leave its socket and the store before the interpreter
    # shuts down: a daemon thread still inside them then can crash the process.
    listener.join(timeout=LISTENER_STOP_SECONDS)


def main() -> None:
    sys.exit(run())
