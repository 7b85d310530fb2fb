"""Accounts, their sessions (devices) and finding people: registering,
signing in with a handle and password or with a link code shown on a device
already signed in, listing and signing out sessions, changing and deleting
the account, and knowing who calls."""
from __future__ import annotations

import hashlib
import ipaddress
import secrets
import uuid
from datetime import timedelta
from typing import Callable, Dict, List, Optional, Tuple

from .. import passwords
from ..auth import Identity
from ..cache import Delivery
from ..contract import LINK_CODE_SECONDS
from ..db import DuplicateKey, Tx
from ..errors import BadCredentials, BadRequest, Forbidden, HandleTaken, Unauthorized, UserNotFound
from ..repositories import (
    Account,
    Attachment,
    Attachments,
    Blocks,
    Deliveries,
    Inbox,
    InboxCounters,
    LinkCodes,
    Members,
    Messages,
    Sessions,
    Stream,
    Users,
)
from .attaching import Attaching
from .deps import Deps
from .fanout import publish_all
from .results import (
    Deleted,
    LinkCode,
    Me,
    Profile,
    Profiles,
    Registered,
    Revoked,
    SessionList,
    SessionView,
    iso,
    member_event,
)

DEFAULT_DEVICE = "unnamed device"
# Crockford's base32 without I, L, O, U: 10 characters are 50 bits, read aloud
# or typed without confusion; shown as XXXXX-XXXXX.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


class Accounts:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    # ------------------------------------------------------------ who calls

    def authenticate(self, authorization: Optional[str]) -> Optional[Identity]:
        """The caller from a Bearer token on a live session; None when auth is off."""
        if not self._deps.auth_enabled:
            return None
        identity = self._deps.signer.identity_from_header(authorization)
        self._deps.session_states().require(identity.session_id)
        return identity

    # ------------------------------------------------------------ signing in

    def register(self, *, user_name: str, source_ip: str, handle: Optional[str] = None,
                 password: Optional[str] = None, device_name: Optional[str] = None) -> Registered:
        deps = self._deps
        if password is not None and handle is None:
            raise BadRequest("password", "needs a handle to sign in with")
        deps.limit(deps.limits.registrations, f"ip:{source_network(source_ip)}")
        user_id, session_id = str(uuid.uuid4()), str(uuid.uuid4())
        password_hash = passwords.hash_password(password) if password is not None else None

        def work(tx: Tx) -> None:
            try:
                Users(tx).register(user_id=user_id, name=user_name, handle=handle, password_hash=password_hash,
                                   created_at=deps.now(), session_id=session_id,
                                   device_name=device_name or DEFAULT_DEVICE)
            except DuplicateKey:
                raise HandleTaken(f"handle: {handle} is taken") from None

        deps.db.run(work, write=True)
        return self._signed_in(Account(user_id, user_name, handle, password_hash), session_id, new_account=True)

    def login(self, *, handle: str, password: str, device_name: Optional[str], source_ip: str) -> Registered:
        """A new session; BadCredentials alike for an unknown handle and a
        wrong password, in about the same time (a hash is verified either way)."""
        self._accounts_on()
        failures = self._failures(source_ip, handle=handle)
        account = self._deps.db.run(lambda tx: Users(tx).by_handle(handle=handle), write=False)
        if not passwords.verify(account.password_hash if account else None, password) or account is None:
            failures()
            raise BadCredentials("the handle or the password is wrong")
        if account.password_hash and passwords.needs_rehash(account.password_hash):
            rehashed = passwords.hash_password(password)  # stronger parameters since it was set
            self._deps.db.run(lambda tx: Users(tx).update(user_id=account.user_id, password_hash=rehashed),
                              write=True)
        return self._new_session(account, device_name)

    def link_code(self, *, caller: Optional[Identity]) -> LinkCode:
        """A one-time code that signs a new device in as the caller."""
        me = self._me(caller)
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
        expires = self._deps.now() + timedelta(seconds=LINK_CODE_SECONDS)
        self._deps.db.run(lambda tx: LinkCodes(tx).replace(user_id=me.user_id, code_hash=_code_hash(raw),
                                                           expires_at=expires), write=True)
        return LinkCode(code=f"{raw[:5]}-{raw[5:]}", expires_in=LINK_CODE_SECONDS)

    def link(self, *, code: str, device_name: Optional[str], source_ip: str) -> Registered:
        self._accounts_on()
        failures = self._failures(source_ip)
        normalized = "".join(c for c in code.upper().translate(_CODE_READS_AS) if c.isalnum())
        now = self._deps.now()

        def work(tx: Tx) -> Optional[Account]:
            user_id = LinkCodes(tx).redeem(code_hash=_code_hash(normalized), now=now)
            return Users(tx).account(user_id=user_id) if user_id else None

        account = self._deps.db.run(work, write=True)
        if account is None:
            failures()
            raise BadCredentials("the link code is wrong, used or expired: show a new one on a signed-in device")
        return self._new_session(account, device_name)

    # ------------------------------------------------------------ sessions

    def sessions(self, *, caller: Optional[Identity]) -> SessionList:
        me = self._me(caller)
        rows = self._deps.db.run(lambda tx: Sessions(tx).of_user(user_id=me.user_id), write=False)
        return SessionList([SessionView(r.session_id, r.device_name, iso(r.created_at), r.session_id == me.session_id)
                            for r in rows])

    def logout(self, *, caller: Optional[Identity], session_id: Optional[str], everywhere: bool) -> Revoked:
        """Sign out the caller's device, one of the user's devices, or all of
        them; a session that is not the user's or is already out counts 0."""
        me = self._me(caller)
        if everywhere and session_id is not None:
            raise BadRequest("all", "give session_id or all=1, not both")

        def work(tx: Tx) -> List[str]:
            live = {r.session_id for r in Sessions(tx).of_user(user_id=me.user_id)}
            chosen = sorted(live) if everywhere else [s for s in [session_id or me.session_id] if s in live]
            Sessions(tx).revoke(session_ids=chosen, at=self._deps.now())
            return chosen

        revoked = self._deps.db.run(work, write=True)
        self._signed_out(me.user_id, revoked)
        return Revoked(revoked=len(revoked))

    # ------------------------------------------------------------ the account

    def account(self, *, caller: Optional[Identity]) -> Me:
        """The caller's own account and settings."""
        return _me_of(self._account(self._me(caller).user_id))

    def update_account(self, *, caller: Optional[Identity], user_name: Optional[str], handle: Optional[str],
                       password: Optional[str], current_password: Optional[str], source_ip: str,
                       read_receipts: Optional[bool] = None) -> Me:
        me = self._me(caller)
        if user_name is None and handle is None and password is None and read_receipts is None:
            raise BadRequest("user_name", "give at least one of user_name, handle, password and read_receipts")
        account = self._account(me.user_id)
        if password is not None and handle is None and account.handle is None:
            raise BadRequest("password", "needs a handle to sign in with: give handle too")
        if (password is not None or handle is not None) and account.password_hash is not None:
            self._check_password(account, current_password, "current_password", source_ip)
        new_hash = passwords.hash_password(password) if password is not None else None

        def work(tx: Tx) -> List[str]:
            try:
                Users(tx).update(user_id=me.user_id, name=user_name, handle=handle, password_hash=new_hash,
                                 read_receipts=read_receipts)
            except DuplicateKey:
                raise HandleTaken(f"handle: {handle} is taken") from None
            if new_hash is None:
                return []
            # A new password signs out every other device: the old one may be what leaked.
            others = [r.session_id for r in Sessions(tx).of_user(user_id=me.user_id) if r.session_id != me.session_id]
            Sessions(tx).revoke(session_ids=others, at=self._deps.now())
            return others

        self._signed_out(me.user_id, self._deps.db.run(work, write=True))
        return _me_of(self._account(me.user_id))

    def delete_account(self, *, caller: Optional[Identity], password: Optional[str], source_ip: str) -> Deleted:
        """Every session signed out; the handle freed; the name and password
        erased; memberships (each group hears the user left), blocks and the
        user's own stream deleted. The messages the user sent stay with their
        recipients."""
        me = self._me(caller)
        account = self._account(me.user_id)
        if account.password_hash is not None:
            self._check_password(account, password, "password", source_ip)

        left: Dict[str, Tuple[Optional[str], Dict[str, int]]] = {}  # group -> its name, each member's seq
        files: List[Attachment] = []  # of the messages that go: no one holds them any more

        def work(tx: Tx) -> List[str]:
            sessions = [r.session_id for r in Sessions(tx).of_user(user_id=me.user_id)]
            Sessions(tx).revoke(session_ids=sessions, at=self._deps.now())
            LinkCodes(tx).remove_of(user_id=me.user_id)
            left.clear()
            files.clear()
            [joined] = tx.fetch(Members.groups_of(user_id=me.user_id))
            for group_id in sorted(joined):  # the user leaves each group, which hears it (in key order: no deadlock)
                done = Deliveries(tx).leave(group_id=group_id, user_id=me.user_id, marker=str(uuid.uuid4()),
                                            at=self._deps.now())
                if done is not None:
                    done.seqs.pop(me.user_id, None)  # the user's own stream goes below
                    left[group_id] = (done.group_name, done.seqs)
            Blocks(tx).remove_all_of(user_id=me.user_id)
            Inbox(tx).remove_stream(user_id=me.user_id)
            Stream(tx).remove(user_id=me.user_id)
            InboxCounters(tx).remove(user_id=me.user_id)
            files.extend(Attachments(tx).unheld_to(recipient_id=me.user_id))
            Messages(tx).remove_unheld_to(recipient_id=me.user_id)
            Users(tx).erase(user_id=me.user_id, deleted_at=self._deps.now())
            return sessions

        self._signed_out(me.user_id, self._deps.db.run(work, write=True))
        if self._deps.cache is not None:
            self._deps.cache.forget([me.user_id])
        Attaching(self._deps).forget(files)
        publish_all(self._deps, [Delivery(member_event(0, group_id=group_id, group_name=name, user_id=me.user_id,
                                                       member=False), seqs, {})
                                 for group_id, (name, seqs) in left.items()])
        return Deleted(deleted=True)

    # ------------------------------------------------------------ people

    def users(self, *, user_ids: List[str]) -> Profiles:
        """Names and handles of these users; unknown and deleted ones are left out."""
        [found] = self._deps.db.run(lambda tx: tx.fetch(Users.accounts(user_ids=user_ids)), write=False)
        by_id = {a.user_id: a for a in found}
        return Profiles([Profile(u, by_id[u].name, by_id[u].handle) for u in user_ids if u in by_id])

    def find_user(self, *, handle: str) -> Profile:
        account = self._deps.db.run(lambda tx: Users(tx).by_handle(handle=handle), write=False)
        if account is None:
            raise UserNotFound(f"handle: nobody has the handle {handle}")
        return Profile(account.user_id, account.name, account.handle)

    # ------------------------------------------------------------ steps

    def _accounts_on(self) -> None:
        if not self._deps.auth_enabled:
            raise Forbidden("AUTH_MODE=none: accounts and sessions are off on this server (any caller is anyone)")

    def _me(self, caller: Optional[Identity]) -> Identity:
        self._accounts_on()
        assert caller is not None  # auth is on: the edge authenticated the call
        return caller

    def _account(self, user_id: str) -> Account:
        account = self._deps.db.run(lambda tx: Users(tx).account(user_id=user_id), write=False)
        if account is None:
            raise Unauthorized("this account was deleted")
        return account

    def _failures(self, source_ip: str, *, handle: Optional[str] = None) -> Callable[[], None]:
        """Refuse at once when this handle or address has failed too often
        (the right password too, until the window passes); the returned call
        counts one more failure."""
        deps, source = self._deps, f"ip:{source_network(source_ip)}"
        deps.limiter.peek(deps.limits.failures_per_source, source)
        if handle is not None:
            deps.limiter.peek(deps.limits.failures_per_handle, f"handle:{handle}")

        def failed() -> None:
            deps.limiter.charge(deps.limits.failures_per_source, source)
            if handle is not None:
                deps.limiter.charge(deps.limits.failures_per_handle, f"handle:{handle}")

        return failed

    def _check_password(self, account: Account, password: Optional[str], parameter: str, source_ip: str) -> None:
        if password is None:
            raise BadRequest(parameter, "is required: this account has a password")
        failures = self._failures(source_ip, handle=account.handle)
        if not passwords.verify(account.password_hash, password):
            failures()
            raise BadCredentials(f"{parameter}: the password is wrong")

    def _new_session(self, account: Account, device_name: Optional[str]) -> Registered:
        session_id = str(uuid.uuid4())
        self._deps.db.run(lambda tx: Sessions(tx).add(session_id=session_id, user_id=account.user_id,
                                                      device_name=device_name or DEFAULT_DEVICE,
                                                      created_at=self._deps.now()), write=True)
        return self._signed_in(account, session_id, new_account=False)

    def _signed_in(self, account: Account, session_id: str, *, new_account: bool) -> Registered:
        self._deps.session_states().started(session_id)
        return Registered(account.user_id, account.name, account.handle,
                          self._deps.signer.issue(account.user_id, session_id), session_id, new_account)

    def _signed_out(self, user_id: str, session_ids: List[str]) -> None:
        """After the commit: refused from now on here, everywhere within 60 s,
        and their WebSocket connections closed."""
        if not session_ids:
            return
        self._deps.session_states().revoked(session_ids)
        deps = self._deps
        if deps.pusher is not None:
            gone = deps.connections.of_sessions(user_id, session_ids)
            deps.pusher.close(gone)
            deps.connections.forget([(user_id, c) for c in gone])


def _me_of(account: Account) -> Me:
    return Me(account.user_id, account.name, account.handle, account.password_hash is not None,
              account.read_receipts)


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii", "replace")).hexdigest()


def source_network(source_ip: str) -> str:
    """Whom a per-source limit counts: an IPv4 address, or an IPv6 /64 (one
    subscriber's whole prefix: an address of its own per request is free)."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return source_ip
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
