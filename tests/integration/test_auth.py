"""The auth matrix (docs/api.md, "Authentication"): every endpoint that needs a token
answers 401 without a valid one and 403 for someone else's; /register and
/health need none; AUTH_MODE=none turns auth off with a warning."""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging

import pytest

from chalicelib import wiring
from chalicelib.auth import TokenSigner

OTHER_SECRET = "another-signing-secret-fedcba9876543210"

# The success status of each endpoint that needs a token.
AUTHENTICATED = {
    "/block": 200,
    "/send": 201,
    "/create_group": 201,
    "/update_group": 200,
    "/send_group": 201,
    "/read_messages": 200,
}
# The parameter naming the acting user, which must be the token's user.
ACTING = {
    "/block": "blocking_user_id",
    "/send": "sending_user_id",
    "/update_group": "user_id",
    "/send_group": "sending_user_id",
    "/read_messages": "user_id",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _setup(api):
    """alice and bob, a group both are in, and a valid call of every
    endpoint acting as alice."""
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    assert api.join(alice, group).status == 200
    assert api.join(bob, group).status == 200
    calls = {
        "/block": {"blocking_user_id": alice.id, "blocked_user_id": bob.id, "to_block": 1},
        "/send": {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "hi"},
        "/create_group": {"group_name": "bambis"},
        "/update_group": {"user_id": alice.id, "group_id": group, "to_be_added": 1},
        "/send_group": {"sending_user_id": alice.id, "group_id": group, "message_text": "hello_group"},
        "/read_messages": {"user_id": alice.id, "after": 0},
    }
    return alice, bob, group, calls


def _forged_tokens(alice, bob):
    """Tokens of the right shape that the server never issued for alice."""
    version, kid, user_id, session_id, signature = alice.token.split(".")
    assert user_id == alice.id
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    same_kid_other_secret = _b64(
        hmac.new(OTHER_SECRET.encode(), f"{version}.{kid}.{alice.id}.{session_id}".encode(), hashlib.sha256).digest()
    )
    bob_session, bob_signature = bob.token.split(".")[3:5]
    return {
        "signature altered": f"{version}.{kid}.{alice.id}.{session_id}.{flipped}",
        "signed by a different secret": TokenSigner([OTHER_SECRET]).issue(alice.id, session_id),
        "right key id, different secret": f"{version}.{kid}.{alice.id}.{session_id}.{same_kid_other_secret}",
        "bob's signature on alice's id": f"{version}.{kid}.{alice.id}.{session_id}.{bob_signature}",
        "bob's session and signature on alice's id": f"{version}.{kid}.{alice.id}.{bob_session}.{bob_signature}",
        "unsigned": f"{version}.{kid}.{alice.id}.{session_id}.",
    }


def _malformed_headers(alice):
    token = alice.token
    return [
        "",
        "Bearer",
        "Bearer ",
        "Bearer not-a-token",
        "Bearer v1.x.y",
        token,  # no scheme
        f"Basic {token}",
        f"Token {token}",
        f"Bearer {token[:-1]}",
        f"Bearer {token}.extra",
        f"Bearer {token.replace('v2.', 'v1.', 1)}",
        f"Bearer {token.replace('.', '', 1)}",
    ]


@pytest.mark.parametrize("path", sorted(AUTHENTICATED))
def test_a_call_without_a_token_is_a_401_and_the_same_call_with_the_token_succeeds(api, path):
    alice, _, _, calls = _setup(api)
    r = api.post(path, calls[path])
    assert r.status == 401 and r.code == "Unauthorized", r
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="messaging"', r  # RFC 6750: no error without a token
    r = api.post(path, calls[path], token=alice.token)
    assert r.status == AUTHENTICATED[path], r


@pytest.mark.parametrize("path", sorted(AUTHENTICATED))
def test_a_malformed_authorization_header_is_a_401(api, path):
    alice, _, _, calls = _setup(api)
    for header in _malformed_headers(alice):
        r = api.post(path, calls[path], headers={"Authorization": header})
        assert r.status == 401 and r.code == "Unauthorized", (header, r)


@pytest.mark.parametrize("path", sorted(AUTHENTICATED))
def test_a_forged_token_for_the_acting_user_is_a_401(api, path):
    alice, bob, _, calls = _setup(api)
    for how, forged in _forged_tokens(alice, bob).items():
        r = api.post(path, calls[path], token=forged)
        assert r.status == 401 and r.code == "Unauthorized", (how, r)
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="messaging", error="invalid_token"', (how, r)


def test_a_forged_direct_message_is_not_delivered(api):
    alice, bob, _, calls = _setup(api)
    for forged in _forged_tokens(alice, bob).values():
        assert api.post("/send", calls["/send"], token=forged).status == 401
    assert api.read(bob).body["messages"] == []


@pytest.mark.parametrize("path", sorted(ACTING))
def test_another_users_valid_token_on_the_acting_user_parameter_is_a_403_forbidden(api, path):
    alice, bob, _, calls = _setup(api)
    r = api.post(path, calls[path], token=bob.token)
    assert r.status == 403 and r.code == "Forbidden", r
    assert ACTING[path] in r.body["Message"], r


def test_sending_as_another_user_delivers_nothing(api):
    alice, bob, group, calls = _setup(api)
    carol = api.register("carol")
    assert api.post("/send", {**calls["/send"], "receiving_user_id": carol.id}, token=bob.token).status == 403
    assert api.post("/send_group", calls["/send_group"], token=bob.token).status == 403
    assert api.read(carol).body["messages"] == []
    assert api.read(bob).body["messages"] == []


def test_blocking_on_behalf_of_another_user_does_not_block(api):
    alice, bob, _, _ = _setup(api)
    r = api.post("/block", {"blocking_user_id": alice.id, "blocked_user_id": bob.id, "to_block": 1},
                 token=bob.token)
    assert r.status == 403 and r.code == "Forbidden", r
    assert api.send(bob, alice, "still open").status == 201


def test_create_group_accepts_any_valid_token(api):
    _, bob, _, _ = _setup(api)
    r = api.post("/create_group", {"group_name": "bob's"}, token=bob.token)
    assert r.status == 201, r
    assert r.body["group_name"] == "bob's"


def test_register_and_health_need_no_token(api):
    r = api.post("/register", {"user_name": "newcomer"})
    assert r.status == 201, r
    r = api.get("/health")
    assert r.status == 200, r


def test_the_bearer_scheme_is_case_insensitive(api):
    alice, _, _, calls = _setup(api)
    r = api.post("/read_messages", calls["/read_messages"], headers={"Authorization": f"bearer {alice.token}"})
    assert r.status == 200, r


def test_a_token_keeps_working_while_its_key_is_still_listed_and_stops_when_it_is_dropped(api, app_env,
                                                                                          monkeypatch):
    alice, _, _, calls = _setup(api)
    monkeypatch.setenv("AUTH_SECRET", f"{OTHER_SECRET} {app_env['AUTH_SECRET']}")
    wiring.reset()
    r = api.post("/read_messages", calls["/read_messages"], token=alice.token)
    assert r.status == 200, r
    newcomer = api.register("newcomer")
    assert newcomer.token.split(".")[1] != alice.token.split(".")[1]

    monkeypatch.setenv("AUTH_SECRET", OTHER_SECRET)
    wiring.reset()
    r = api.post("/read_messages", calls["/read_messages"], token=alice.token)
    assert r.status == 401 and r.code == "Unauthorized", r
    r = api.read(newcomer)
    assert r.status == 200, r


# --------------------------------------------------------------------------- AUTH_MODE


def _auth_off_warnings(caplog):
    return [
        rec for rec in caplog.records
        if rec.levelno == logging.WARNING and "AUTH_MODE" in rec.getMessage()
    ]


def test_with_auth_mode_none_every_call_works_without_a_token_and_a_warning_is_logged(api, monkeypatch, caplog):
    alice, bob, _, calls = _setup(api)
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("AUTH_MODE", "none")
    wiring.reset()
    for path, status in AUTHENTICATED.items():
        r = api.post(path, calls[path])
        assert r.status == status, (path, r)
    assert [m["text"] for m in api.read(bob).body["messages"]] == ["hi", "hello_group"]
    warnings = _auth_off_warnings(caplog)
    assert warnings, caplog.text
    assert "none" in warnings[0].getMessage()


def test_with_auth_mode_none_a_caller_may_act_as_any_user(api, monkeypatch):
    alice, bob, _, _ = _setup(api)
    monkeypatch.setenv("AUTH_MODE", "none")
    wiring.reset()
    r = api.post("/send", {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "as alice"},
                 token=bob.token)
    assert r.status == 201, r
    r = api.post("/read_messages", {"user_id": bob.id, "after": 0})
    assert [m["text"] for m in r.body["messages"]] == ["as alice"]


def test_with_the_default_auth_mode_no_auth_off_warning_is_logged(api, caplog):
    caplog.set_level(logging.WARNING)
    wiring.reset()
    alice, _, _, calls = _setup(api)
    assert api.post("/read_messages", calls["/read_messages"]).status == 401
    assert _auth_off_warnings(caplog) == []


def test_tokens_and_message_text_never_appear_in_the_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    wiring.reset()
    alice, bob, group, calls = _setup(api)
    secret_text = "my-very-private-message-4711"
    assert api.send(alice, bob, secret_text).status == 201
    assert api.send_group(alice, group, secret_text).status == 201
    api.post("/send", calls["/send"], token=alice.token + "x")
    api.post("/send", calls["/send"], token=bob.token)
    api.read(bob)
    for user in (alice, bob):
        assert user.token not in caplog.text
        assert user.token.split(".")[3] not in caplog.text
    assert secret_text not in caplog.text
