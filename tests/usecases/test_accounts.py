"""The rules of accounts, sessions and people (docs/api.md, "Accounts,
sessions and people"), on the use cases directly: handles, passwords,
signing in on a second device with a password or a link code, signing out
one device or all of them, changing and deleting the account, finding
people. Every test makes its own handles and source addresses (the
database and the failure counters are shared by the tier)."""
from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta

import pytest

from chalicelib.auth import Identity
from chalicelib.errors import (
    BadCredentials,
    BadRequest,
    Forbidden,
    HandleTaken,
    RateLimited,
    Unauthorized,
    UserNotFound,
)
from chalicelib.ratelimit import Limit
from chalicelib.usecases import UseCases
from chalicelib.usecases.results import Registered
from tests.usecases.steps import block, group_of, join, send, send_group, texts, user

PASSWORD = "correct horse battery"


def handle() -> str:
    return "u" + secrets.token_hex(6)


def source() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def me(account: Registered) -> Identity:
    return Identity(account.user_id, account.session_id)


def bearer(account: Registered) -> str:
    return f"Bearer {account.token}"


def account_with_password(uc: UseCases, name: str = "shir") -> Registered:
    return uc.accounts.register(user_name=name, handle=handle(), password=PASSWORD, device_name="laptop",
                                source_ip=source())


# --------------------------------------------------------------------------- handles and passwords


def test_a_handle_is_kept_in_lower_case_and_unique_whatever_its_case(uc):
    first = uc.accounts.register(user_name="Shir", handle=None, source_ip=source())
    assert first.handle is None
    taken = handle()
    shir = uc.accounts.register(user_name="Shir", handle=taken, source_ip=source())
    assert shir.handle == taken
    with pytest.raises(HandleTaken):
        uc.accounts.register(user_name="other", handle=taken, source_ip=source())
    assert uc.accounts.find_user(handle=taken) == uc.accounts.users(user_ids=[shir.user_id]).users[0]


def test_a_password_needs_a_handle_to_sign_in_with(uc):
    with pytest.raises(BadRequest) as refused:
        uc.accounts.register(user_name="x", password=PASSWORD, source_ip=source())
    assert refused.value.parameter == "password"


def test_a_second_device_signs_in_with_the_handle_and_password_as_the_same_user(uc):
    shir, other = account_with_password(uc), user(uc, "dan")
    phone = uc.accounts.login(handle=shir.handle, password=PASSWORD, device_name="phone", source_ip=source())
    assert (phone.user_id, phone.handle, phone.new_account) == (shir.user_id, shir.handle, False)
    assert phone.session_id != shir.session_id and phone.token != shir.token
    assert uc.accounts.authenticate(bearer(phone)) == me(phone)
    send(uc, phone, other, "from the phone")
    assert texts(uc, other) == ["from the phone"]
    devices = uc.accounts.sessions(caller=me(phone)).sessions
    assert [(s.device_name, s.current) for s in devices] == [("laptop", False), ("phone", True)]


def test_an_unknown_handle_and_a_wrong_password_get_the_same_answer(uc):
    shir, address = account_with_password(uc), source()
    with pytest.raises(BadCredentials) as wrong:
        uc.accounts.login(handle=shir.handle, password="wrong password", device_name=None, source_ip=address)
    with pytest.raises(BadCredentials) as unknown:
        uc.accounts.login(handle=handle(), password=PASSWORD, device_name=None, source_ip=address)
    assert wrong.value.message == unknown.value.message
    # An account without a password cannot be signed into with one.
    anonymous = uc.accounts.register(user_name="anon", handle=handle(), source_ip=source())
    with pytest.raises(BadRequest):
        uc.accounts.update_account(caller=me(anonymous), user_name=None, handle=None, password=None,
                                   current_password=None, source_ip=source())
    with pytest.raises(BadCredentials):
        uc.accounts.login(handle=anonymous.handle, password=PASSWORD, device_name=None, source_ip=address)


def test_ten_failures_for_a_handle_refuse_even_the_right_password_until_the_window_passes(uc):
    shir, attacker = account_with_password(uc), source()
    for _ in range(10):
        with pytest.raises(BadCredentials):
            uc.accounts.login(handle=shir.handle, password="guess guess", device_name=None, source_ip=attacker)
    with pytest.raises(RateLimited) as limited:
        uc.accounts.login(handle=shir.handle, password=PASSWORD, device_name=None, source_ip=source())
    assert limited.value.retry_after_seconds >= 1
    # Another handle from the same address is not held back by this handle's count.
    dan = account_with_password(uc, "dan")
    assert uc.accounts.login(handle=dan.handle, password=PASSWORD, device_name=None, source_ip=attacker)


def test_failures_from_one_address_are_bounded_across_handles_and_a_success_resets_nothing(uc, deps):
    uc = UseCases(dataclasses.replace(deps, limits=dataclasses.replace(
        deps.limits, failures_per_source=Limit("sign-in failures", 3, 15 * 60_000))))
    accounts, attacker = [account_with_password(uc, f"user{i}") for i in range(4)], source()
    with pytest.raises(BadCredentials):
        uc.accounts.login(handle=accounts[0].handle, password="guess guess", device_name=None, source_ip=attacker)
    assert uc.accounts.login(handle=accounts[0].handle, password=PASSWORD, device_name=None, source_ip=attacker)
    for victim in accounts[1:3]:
        with pytest.raises(BadCredentials):
            uc.accounts.login(handle=victim.handle, password="guess guess", device_name=None, source_ip=attacker)
    with pytest.raises(RateLimited):  # three failures from the address, the success between them counted nothing off
        uc.accounts.login(handle=accounts[3].handle, password=PASSWORD, device_name=None, source_ip=attacker)
    with pytest.raises(RateLimited):  # and guessing link codes from there counts the same
        uc.accounts.link(code="AAAAA-AAAAA", device_name=None, source_ip=attacker)
    assert uc.accounts.login(handle=accounts[3].handle, password=PASSWORD, device_name=None, source_ip=source())


# --------------------------------------------------------------------------- link codes


def test_a_link_code_signs_one_new_device_in_once(uc):
    anon, dan = user(uc, "anon"), user(uc, "dan")  # no handle, no password: a code is the only way in
    code = uc.accounts.link_code(caller=me(anon))
    assert code.expires_in == 300 and len(code.code) == 11 and code.code[5] == "-"
    tablet = uc.accounts.link(code=code.code.lower().replace("-", " "), device_name="tablet", source_ip=source())
    assert tablet.user_id == anon.user_id and tablet.session_id != anon.session_id
    send(uc, tablet, dan, "from the tablet")
    assert texts(uc, dan) == ["from the tablet"]
    with pytest.raises(BadCredentials):
        uc.accounts.link(code=code.code, device_name=None, source_ip=source())  # used


def test_a_new_link_code_replaces_the_last_and_an_expired_one_links_nothing(uc, deps):
    anon = user(uc, "anon")
    first = uc.accounts.link_code(caller=me(anon))
    second = uc.accounts.link_code(caller=me(anon))
    with pytest.raises(BadCredentials):
        uc.accounts.link(code=first.code, device_name=None, source_ip=source())
    later = UseCases(dataclasses.replace(deps, now=lambda: deps.now() + timedelta(seconds=301)))
    with pytest.raises(BadCredentials):
        later.accounts.link(code=second.code, device_name=None, source_ip=source())


# --------------------------------------------------------------------------- signing out


def test_signing_out_a_device_refuses_its_token_at_once_and_leaves_the_others(uc):
    shir = account_with_password(uc)
    phone = uc.accounts.login(handle=shir.handle, password=PASSWORD, device_name="phone", source_ip=source())
    assert uc.accounts.logout(caller=me(shir), session_id=phone.session_id, everywhere=False).revoked == 1
    with pytest.raises(Unauthorized):
        uc.accounts.authenticate(bearer(phone))
    assert uc.accounts.authenticate(bearer(shir)) == me(shir)
    assert [s.session_id for s in uc.accounts.sessions(caller=me(shir)).sessions] == [shir.session_id]
    # Once is enough: again, or someone else's session, signs out nothing.
    assert uc.accounts.logout(caller=me(shir), session_id=phone.session_id, everywhere=False).revoked == 0
    dan = user(uc, "dan")
    assert uc.accounts.logout(caller=me(dan), session_id=shir.session_id, everywhere=False).revoked == 0
    assert uc.accounts.authenticate(bearer(shir)) == me(shir)
    # No session named: the caller's own.
    assert uc.accounts.logout(caller=me(shir), session_id=None, everywhere=False).revoked == 1
    with pytest.raises(Unauthorized):
        uc.accounts.authenticate(bearer(shir))


def test_signing_out_everywhere_refuses_every_token_of_the_user(uc):
    shir = account_with_password(uc)
    phone = uc.accounts.login(handle=shir.handle, password=PASSWORD, device_name="phone", source_ip=source())
    assert uc.accounts.logout(caller=me(phone), session_id=None, everywhere=True).revoked == 2
    for device in (shir, phone):
        with pytest.raises(Unauthorized):
            uc.accounts.authenticate(bearer(device))
    with pytest.raises(BadRequest):
        uc.accounts.logout(caller=me(shir), session_id=shir.session_id, everywhere=True)


def test_a_token_from_before_sessions_stands_for_the_users_own_session_and_is_signed_out_with_it(uc, deps):
    """Migration 0004 gave every user of then a session whose id is the
    user's own; a v1 token (which names no session) is that session's."""
    import base64
    import hashlib
    import hmac

    from chalicelib.auth import key_id
    from chalicelib.repositories import Sessions
    from tests.usecases.conftest import SECRET

    old = user(uc, "old-timer")
    deps.db.run(lambda tx: Sessions(tx).add(session_id=old.user_id, user_id=old.user_id, device_name="before",
                                            created_at=deps.now()), write=True)
    payload = f"v1.{key_id(SECRET)}.{old.user_id}"
    signature = base64.urlsafe_b64encode(hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).digest())
    legacy = f"Bearer {payload}.{signature.rstrip(b'=').decode()}"
    assert uc.accounts.authenticate(legacy) == Identity(old.user_id, old.user_id)
    assert uc.accounts.logout(caller=me(old), session_id=None, everywhere=True).revoked == 2
    with pytest.raises(Unauthorized):
        uc.accounts.authenticate(legacy)


# --------------------------------------------------------------------------- changing the account


def test_a_new_password_needs_the_current_one_and_signs_out_every_other_device(uc):
    shir = account_with_password(uc)
    phone = uc.accounts.login(handle=shir.handle, password=PASSWORD, device_name="phone", source_ip=source())
    with pytest.raises(BadRequest) as missing:
        uc.accounts.update_account(caller=me(shir), user_name=None, handle=None, password="a new password",
                                   current_password=None, source_ip=source())
    assert missing.value.parameter == "current_password"
    with pytest.raises(BadCredentials):
        uc.accounts.update_account(caller=me(shir), user_name=None, handle=None, password="a new password",
                                   current_password="not the one", source_ip=source())
    uc.accounts.update_account(caller=me(shir), user_name=None, handle=None, password="a new password",
                               current_password=PASSWORD, source_ip=source())
    assert uc.accounts.authenticate(bearer(shir)) == me(shir)
    with pytest.raises(Unauthorized):
        uc.accounts.authenticate(bearer(phone))
    with pytest.raises(BadCredentials):
        uc.accounts.login(handle=shir.handle, password=PASSWORD, device_name=None, source_ip=source())
    assert uc.accounts.login(handle=shir.handle, password="a new password", device_name=None, source_ip=source())


def test_a_name_changes_freely_and_a_handle_with_the_password_when_one_is_set(uc):
    shir, taken = account_with_password(uc), account_with_password(uc, "other").handle
    renamed = uc.accounts.update_account(caller=me(shir), user_name="Shir B.", handle=None, password=None,
                                         current_password=None, source_ip=source())
    assert (renamed.user_name, renamed.handle) == ("Shir B.", shir.handle)
    new_handle = handle()
    with pytest.raises(BadRequest):
        uc.accounts.update_account(caller=me(shir), user_name=None, handle=new_handle, password=None,
                                   current_password=None, source_ip=source())
    with pytest.raises(HandleTaken):
        uc.accounts.update_account(caller=me(shir), user_name=None, handle=taken, password=None,
                                   current_password=PASSWORD, source_ip=source())
    moved = uc.accounts.update_account(caller=me(shir), user_name=None, handle=new_handle, password=None,
                                       current_password=PASSWORD, source_ip=source())
    assert moved.handle == new_handle
    with pytest.raises(UserNotFound):
        uc.accounts.find_user(handle=shir.handle)  # the old handle is free
    # An account without a password sets its first one (and a handle) without one.
    anon = user(uc, "anon")
    claimed = uc.accounts.update_account(caller=me(anon), user_name=None, handle=handle(), password=PASSWORD,
                                         current_password=None, source_ip=source())
    assert uc.accounts.login(handle=claimed.handle, password=PASSWORD, device_name=None, source_ip=source())


# --------------------------------------------------------------------------- deleting the account


def test_deleting_an_account_erases_it_frees_its_handle_and_keeps_what_it_sent_with_the_recipients(uc):
    shir, dan, carol = account_with_password(uc), user(uc, "dan"), user(uc, "carol")
    phone = uc.accounts.login(handle=shir.handle, password=PASSWORD, device_name="phone", source_ip=source())
    group = group_of(uc, shir, dan, carol)
    send(uc, shir, dan, "kept by dan")
    send(uc, dan, shir, "to shir")
    block(uc, shir, carol)
    with pytest.raises(BadRequest):
        uc.accounts.delete_account(caller=me(shir), password=None, source_ip=source())
    with pytest.raises(BadCredentials):
        uc.accounts.delete_account(caller=me(shir), password="not it at all", source_ip=source())
    assert uc.accounts.delete_account(caller=me(shir), password=PASSWORD, source_ip=source()).deleted
    for device in (shir, phone):  # every session signed out
        with pytest.raises(Unauthorized):
            uc.accounts.authenticate(bearer(device))
    with pytest.raises(UserNotFound):
        uc.accounts.find_user(handle=shir.handle)
    assert uc.accounts.users(user_ids=[shir.user_id, dan.user_id]).users == \
        uc.accounts.users(user_ids=[dan.user_id]).users  # left out
    with pytest.raises(BadCredentials):  # the name and password are gone: nothing signs in
        uc.accounts.login(handle=shir.handle, password=PASSWORD, device_name=None, source_ip=source())
    with pytest.raises(UserNotFound):
        send(uc, dan, shir, "anyone there?")
    assert texts(uc, dan) == ["kept by dan"]  # what shir sent stays with dan, from shir's id
    assert uc.reading.read(caller=None, user_id=dan.user_id, after=0, since=None,
                           limit=10).messages[0]["sender_id"] == shir.user_id
    # Memberships and blocks went with it: carol now gets dan's group messages and the seat is free.
    assert send_group(uc, dan, group, "after").recipients == 1
    join(uc, user(uc, "erin"), group)
    with pytest.raises(UserNotFound):  # the stream is gone
        uc.reading.read(caller=None, user_id=shir.user_id, after=0, since=None, limit=10)
    # The handle is free for someone else.
    again = uc.accounts.register(user_name="new", handle=shir.handle, source_ip=source())
    assert again.user_id != shir.user_id


def test_an_account_without_a_password_is_deleted_by_its_token_alone(uc):
    anon = user(uc, "anon")
    assert uc.accounts.delete_account(caller=me(anon), password=None, source_ip=source()).deleted
    with pytest.raises(Unauthorized):
        uc.accounts.authenticate(bearer(anon))


# --------------------------------------------------------------------------- people and auth off


def test_users_answers_names_and_handles_and_leaves_out_the_unknown(uc):
    shir, dan = account_with_password(uc), user(uc, "dan")
    found = uc.accounts.users(user_ids=[dan.user_id, "00000000-0000-4000-8000-000000000000", shir.user_id]).users
    assert [(p.user_id, p.user_name, p.handle) for p in found] == [(dan.user_id, "dan", None),
                                                                   (shir.user_id, "shir", shir.handle)]


def test_with_auth_off_the_account_endpoints_are_refused(deps):
    off = UseCases(dataclasses.replace(deps, auth_enabled=False))
    shir = account_with_password(off)
    with pytest.raises(Forbidden):
        off.accounts.login(handle=shir.handle, password=PASSWORD, device_name=None, source_ip=source())
    with pytest.raises(Forbidden):
        off.accounts.sessions(caller=None)
    with pytest.raises(Forbidden):
        off.accounts.link(code="AAAAA-AAAAA", device_name=None, source_ip=source())
    assert off.accounts.find_user(handle=shir.handle).user_id == shir.user_id


def test_a_deleted_account_is_unknown_to_blocking(uc):
    gone, dan = user(uc, "gone"), user(uc, "dan")
    uc.accounts.delete_account(caller=me(gone), password=None, source_ip=source())
    with pytest.raises(UserNotFound):
        block(uc, dan, gone)
