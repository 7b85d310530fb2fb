"""What the HTTP edge adds to accounts, sessions and people (the rules are in
tests/usecases/test_accounts.py): statuses and envelopes, which parameter a
400 names, handles in any case, the 429 with Retry-After, a signed-out
token's 401, and that no password, token, link code or hash reaches a log
line."""
from __future__ import annotations

import logging
import secrets

import pytest

from chalicelib import wiring

PASSWORD = "correct horse battery"


def handle() -> str:
    return "h" + secrets.token_hex(5)


def register(api, name="shir", **extra):
    r = api.post("/register", {"user_name": name, **extra})
    assert r.status == 201, r
    return r.body


def test_register_login_and_link_answer_the_same_shape_with_the_handle_in_lower_case(api):
    h = handle()
    shir = register(api, handle=h.upper(), password=PASSWORD, device_name="laptop")
    assert set(shir) == {"user_id", "user_name", "handle", "token", "session_id"} and shir["handle"] == h
    phone = api.post("/login", {"handle": h.capitalize(), "password": PASSWORD, "device_name": "phone"})
    assert phone.status == 200 and set(phone.body) == set(shir) and phone.body["user_id"] == shir["user_id"]
    code = api.post("/link_code", token=shir["token"])
    assert code.status == 200 and set(code.body) == {"code", "expires_in"}
    tablet = api.post("/link", {"code": code.body["code"], "device_name": "tablet"})
    assert tablet.status == 200 and set(tablet.body) == set(shir) and tablet.body["user_id"] == shir["user_id"]
    listed = api.post("/sessions", token=tablet.body["token"])
    assert listed.status == 200
    assert [(s["device_name"], s["current"]) for s in listed.body["sessions"]] == \
        [("laptop", False), ("phone", False), ("tablet", True)]
    assert set(listed.body["sessions"][0]) == {"session_id", "device_name", "created_at", "current"}


@pytest.mark.parametrize("params, named", [
    ({"user_name": "x", "handle": "2bad"}, "handle"),
    ({"user_name": "x", "handle": "ab"}, "handle"),
    ({"user_name": "x", "handle": "a" * 33}, "handle"),
    ({"user_name": "x", "handle": "has-dash"}, "handle"),
    ({"user_name": "x", "handle": "okhandle", "password": "short"}, "password"),
    ({"user_name": "x", "handle": "okhandle", "password": "x" * 257}, "password"),
    ({"user_name": "x", "password": "long enough"}, "password"),
    ({"user_name": "x", "device_name": "d" * 65}, "device_name"),
])
def test_a_bad_handle_password_or_device_name_is_a_400_naming_it(api, params, named):
    r = api.post("/register", params)
    assert r.status == 400 and r.code == "BadRequest" and r.body["Message"].startswith(f"{named}:"), r


def test_bad_credentials_are_a_401_without_saying_which_part_was_wrong_and_taken_handles_a_409(api):
    h = handle()
    register(api, handle=h, password=PASSWORD)
    wrong = api.post("/login", {"handle": h, "password": "wrong password"})
    unknown = api.post("/login", {"handle": handle(), "password": PASSWORD})
    assert (wrong.status, wrong.code) == (unknown.status, unknown.code) == (401, "BadCredentials")
    assert wrong.body == unknown.body
    taken = api.post("/register", {"user_name": "again", "handle": h.upper()})
    assert taken.status == 409 and taken.code == "HandleTaken", taken
    assert api.post("/link", {"code": "ZZZZZ-ZZZZZ"}).code == "BadCredentials"


def test_too_many_failures_are_a_429_with_retry_after(api):
    h = handle()
    register(api, handle=h, password=PASSWORD)
    for _ in range(10):
        assert api.post("/login", {"handle": h, "password": "guess guess"}).status == 401
    r = api.post("/login", {"handle": h, "password": PASSWORD})
    assert r.status == 429 and r.code == "RateLimited" and 1 <= int(r.headers["Retry-After"]) <= 15 * 60, r


def test_a_signed_out_token_is_a_401_naming_an_invalid_token(api):
    shir = register(api)
    assert api.post("/logout", token=shir["token"]).body == {"revoked": 1}
    r = api.post("/read_messages", {"user_id": shir["user_id"], "after": 0}, token=shir["token"])
    assert r.status == 401 and r.code == "Unauthorized", r
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="messaging", error="invalid_token"'


def test_users_and_find_user_answer_names_and_handles(api):
    h = handle()
    shir, dan = register(api, handle=h), register(api, "dan")
    r = api.post("/users", {"user_ids": f"{dan['user_id']},{shir['user_id']}"}, token=dan["token"])
    assert r.status == 200 and r.body == {"users": [
        {"user_id": dan["user_id"], "user_name": "dan", "handle": None},
        {"user_id": shir["user_id"], "user_name": "shir", "handle": h}]}
    found = api.post("/find_user", {"handle": h.upper()}, token=dan["token"])
    assert found.status == 200 and found.body == {"user_id": shir["user_id"], "user_name": "shir", "handle": h}
    missing = api.post("/find_user", {"handle": handle()}, token=dan["token"])
    assert missing.status == 404 and missing.code == "UserNotFound"
    too_many = ",".join([dan["user_id"]] * 101)
    r = api.post("/users", {"user_ids": too_many}, token=dan["token"])
    assert r.status == 400 and r.body["Message"].startswith("user_ids:"), r
    r = api.post("/users", {"user_ids": "not-an-id"}, token=dan["token"])
    assert r.status == 400 and r.body["Message"].startswith("user_ids:"), r


def test_update_and_delete_answer_their_shapes(api):
    h = handle()
    shir = register(api, handle=h, password=PASSWORD)
    r = api.post("/update_account", {"user_name": "Shir B."}, token=shir["token"])
    assert r.status == 200 and r.body == {"user_id": shir["user_id"], "user_name": "Shir B.", "handle": h,
                                          "has_password": True, "read_receipts": True}
    r = api.post("/delete_account", {"password": "wrong password"}, token=shir["token"])
    assert r.status == 401 and r.code == "BadCredentials"
    r = api.post("/delete_account", {"password": PASSWORD}, token=shir["token"])
    assert r.status == 200 and r.body == {"deleted": True}
    assert api.post("/sessions", token=shir["token"]).status == 401


def test_with_auth_off_the_account_endpoints_are_a_403(api, monkeypatch):
    monkeypatch.setenv("AUTH_MODE", "none")
    wiring.reset()
    r = api.post("/login", {"handle": handle(), "password": PASSWORD})
    assert r.status == 403 and r.code == "Forbidden" and "AUTH_MODE=none" in r.body["Message"], r


def test_no_password_token_link_code_or_hash_reaches_a_log_line(api, caplog):
    caplog.set_level(logging.DEBUG)
    h, new_password = handle(), "another secret phrase"
    shir = register(api, handle=h, password=PASSWORD, device_name="laptop")
    phone = api.post("/login", {"handle": h, "password": PASSWORD}).body
    api.post("/login", {"handle": h, "password": "a wrong guess here"})
    code = api.post("/link_code", token=shir["token"]).body["code"]
    tablet = api.post("/link", {"code": code}).body
    api.post("/link", {"code": code})  # used: refused
    api.post("/update_account", {"password": new_password, "current_password": PASSWORD}, token=shir["token"])
    api.post("/delete_account", {"password": new_password}, token=shir["token"])
    everything = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "/login" in everything and "/link" in everything  # the request lines are there
    for secret in (PASSWORD, new_password, "a wrong guess here", code, code.replace("-", ""), shir["token"],
                   phone["token"], tablet["token"], "$argon2id$"):
        assert secret not in everything, secret
