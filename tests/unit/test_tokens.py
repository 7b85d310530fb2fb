import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.auth import TokenSigner, key_id
from chalicelib.errors import Unauthorized
from chalicelib.settings import ConfigError

UID = "2e86f3d2-9705-4acb-b1c7-980e5bb05ada"
OLD, NEW = "old-secret-0123456789abcdef", "new-secret-0123456789abcdef"


def test_a_token_verifies_to_the_user_it_was_issued_to():
    signer = TokenSigner([NEW])
    token = signer.issue(UID)
    assert token.startswith(f"v1.{key_id(NEW)}.{UID}.")
    assert signer.verify(token) == UID
    assert signer.user_from_header(f"Bearer {token}") == UID
    assert signer.user_from_header(f"bearer  {token} ") == UID


def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_dropped():
    old_token = TokenSigner([OLD]).issue(UID)
    rotated = TokenSigner([NEW, OLD])
    assert rotated.verify(old_token) == UID
    assert rotated.issue(UID).split(".")[1] == key_id(NEW)
    with pytest.raises(Unauthorized):
        TokenSigner([NEW]).verify(old_token)


def test_a_token_signed_with_another_secret_is_refused_even_with_the_same_key_id():
    signer = TokenSigner([NEW])
    forged = TokenSigner(["attacker-secret-0123456789"]).issue(UID)
    _, _, user, sig = forged.split(".")
    with pytest.raises(Unauthorized):
        signer.verify(forged)
    with pytest.raises(Unauthorized):
        signer.verify(f"v1.{key_id(NEW)}.{user}.{sig}")


def test_a_token_moved_to_another_user_is_refused():
    signer = TokenSigner([NEW])
    token = signer.issue(UID)
    other = "3f86f3d2-9705-4acb-b1c7-980e5bb05adb"
    with pytest.raises(Unauthorized):
        signer.verify(token.replace(UID, other))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Token x", "Bearer a.b.c"])
def test_missing_or_malformed_authorization_headers_are_unauthorized(header):
    with pytest.raises(Unauthorized):
        TokenSigner([NEW]).user_from_header(header)


@given(st.data())
def test_any_single_character_change_to_a_token_is_refused(data):
    signer = TokenSigner([NEW])
    token = signer.issue(UID)
    i = data.draw(st.integers(0, len(token) - 1))
    ch = data.draw(st.characters(codec="utf-8").filter(lambda c: c != token[i]))
    mutated = token[:i] + ch + token[i + 1:]
    with pytest.raises(Unauthorized):
        signer.verify(mutated)


@given(st.text(max_size=120))
def test_arbitrary_strings_never_verify(text):
    with pytest.raises(Unauthorized):
        TokenSigner([NEW]).verify(text)


def test_short_secrets_are_a_configuration_error():
    with pytest.raises(ConfigError):
        TokenSigner(["short"])
    with pytest.raises(ConfigError):
        TokenSigner([])


def test_signatures_are_compared_in_constant_time(monkeypatch):
    import hmac

    from chalicelib import auth

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    signer = TokenSigner([NEW])
    token = signer.issue(UID)
    assert signer.verify(token) == UID
    with pytest.raises(Unauthorized):
        signer.verify(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert len(calls) == 2 and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


# --------------------------------------------------------------------------- connect tickets

TICKET_SECRET = "ticket-signing-secret-0123456789"
TICKET_USER = "2e86f3d2-9705-4acb-b1c7-980e5bb05ada"


def test_a_connect_ticket_names_its_user_and_lives_at_most_a_minute():
    signer = TokenSigner([TICKET_SECRET])
    ticket = signer.issue_ticket(TICKET_USER, now=1_000_000)
    assert signer.verify_ticket(ticket, now=1_000_000) == TICKET_USER
    assert signer.verify_ticket(ticket, now=1_000_059) == TICKET_USER
    with pytest.raises(Unauthorized):
        signer.verify_ticket(ticket, now=1_000_060)  # expired


def test_forged_tampered_or_overlong_tickets_and_tokens_in_their_place_are_refused():
    from chalicelib.auth import TICKET_VERSION

    signer = TokenSigner([TICKET_SECRET])
    ticket = signer.issue_ticket(TICKET_USER, now=1_000_000)
    version, kid, user, expires, signature = ticket.split(".")
    other_user = "00000000-0000-4000-8000-000000000000"
    refused = {
        "another secret": TokenSigner(["another-secret-0123456789abcdef"]).issue_ticket(TICKET_USER, now=1_000_000),
        "another user": ".".join([version, kid, other_user, expires, signature]),
        "a later expiry": ".".join([version, kid, user, str(int(expires) + 30), signature]),
        "a bearer token": signer.issue(TICKET_USER),
        "a token's signature": ".".join([TICKET_VERSION, kid, user, expires, signer.issue(TICKET_USER).split(".")[3]]),
        "garbage": "not-a-ticket",
    }
    for how, forged in refused.items():
        with pytest.raises(Unauthorized):
            signer.verify_ticket(forged, now=1_000_000)
    # Signed right but claiming to live for an hour: refused as well.
    long_lived = TokenSigner([TICKET_SECRET]).issue_ticket(TICKET_USER, now=1_000_000 + 3600)
    with pytest.raises(Unauthorized):
        signer.verify_ticket(long_lived, now=1_000_000)
    with pytest.raises(Unauthorized):
        signer.verify(ticket)  # and a ticket is no token
