import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.auth import Identity, TokenSigner, key_id
from chalicelib.errors import Unauthorized
from chalicelib.settings import ConfigError

UID = "2e86f3d2-9705-4acb-b1c7-980e5bb05ada"
SID = "5a1e0b9c-3d4e-4f60-8a7b-9c0d1e2f3a4b"
ME = Identity(UID, SID)
OLD, NEW = "old-secret-0123456789abcdef", "new-secret-0123456789abcdef"


def test_a_token_verifies_to_the_user_and_session_it_was_issued_to():
    signer = TokenSigner([NEW])
    token = signer.issue(UID, SID)
    assert token.startswith(f"v2.{key_id(NEW)}.{UID}.{SID}.")
    assert signer.verify(token) == ME
    assert signer.identity_from_header(f"Bearer {token}") == ME
    assert signer.identity_from_header(f"bearer  {token} ") == ME


def test_a_token_issued_before_sessions_stands_for_the_session_named_by_its_user():
    """v1.<kid>.<user>.<signature>: migration 0004 gave every user of then a
    session whose id is the user's own; signing it out revokes these tokens."""
    import base64
    import hashlib
    import hmac

    payload = f"v1.{key_id(NEW)}.{UID}"
    signature = base64.urlsafe_b64encode(hmac.new(NEW.encode(), payload.encode(), hashlib.sha256).digest())
    legacy = f"{payload}.{signature.rstrip(b'=').decode()}"
    assert TokenSigner([NEW]).verify(legacy) == Identity(UID, UID)
    with pytest.raises(Unauthorized):
        TokenSigner([NEW]).verify(legacy[:-2] + ("AA" if legacy[-2:] != "AA" else "BB"))


def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_dropped():
    old_token = TokenSigner([OLD]).issue(UID, SID)
    rotated = TokenSigner([NEW, OLD])
    assert rotated.verify(old_token) == ME
    assert rotated.issue(UID, SID).split(".")[1] == key_id(NEW)
    with pytest.raises(Unauthorized):
        TokenSigner([NEW]).verify(old_token)


def test_a_token_signed_with_another_secret_is_refused_even_with_the_same_key_id():
    signer = TokenSigner([NEW])
    forged = TokenSigner(["attacker-secret-0123456789"]).issue(UID, SID)
    _, _, user, session, sig = forged.split(".")
    with pytest.raises(Unauthorized):
        signer.verify(forged)
    with pytest.raises(Unauthorized):
        signer.verify(f"v2.{key_id(NEW)}.{user}.{session}.{sig}")


def test_a_token_moved_to_another_user_or_session_is_refused():
    signer = TokenSigner([NEW])
    token = signer.issue(UID, SID)
    other = "3f86f3d2-9705-4acb-b1c7-980e5bb05adb"
    with pytest.raises(Unauthorized):
        signer.verify(token.replace(UID, other))
    with pytest.raises(Unauthorized):
        signer.verify(token.replace(SID, other))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Token x", "Bearer a.b.c"])
def test_missing_or_malformed_authorization_headers_are_unauthorized(header):
    with pytest.raises(Unauthorized):
        TokenSigner([NEW]).identity_from_header(header)


@given(st.data())
def test_any_single_character_change_to_a_token_is_refused(data):
    signer = TokenSigner([NEW])
    token = signer.issue(UID, SID)
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
    token = signer.issue(UID, SID)
    assert signer.verify(token) == ME
    with pytest.raises(Unauthorized):
        signer.verify(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert len(calls) == 2 and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


# --------------------------------------------------------------------------- connect tickets

TICKET_SECRET = "ticket-signing-secret-0123456789"
TICKET_USER = "2e86f3d2-9705-4acb-b1c7-980e5bb05ada"


def test_a_connect_ticket_names_its_user_and_session_and_lives_at_most_a_minute():
    signer = TokenSigner([TICKET_SECRET])
    ticket = signer.issue_ticket(TICKET_USER, SID, now=1_000_000)
    named = signer.verify_ticket(ticket, now=1_000_000)
    assert (named.user_id, named.session_id, named.expires) == (TICKET_USER, SID, 1_000_060)
    assert signer.verify_ticket(ticket, now=1_000_059) == named
    assert signer.issue_ticket(TICKET_USER, SID, now=1_000_000) != ticket  # each its own nonce: used once
    with pytest.raises(Unauthorized):
        signer.verify_ticket(ticket, now=1_000_060)  # expired


def test_forged_tampered_or_overlong_tickets_and_tokens_in_their_place_are_refused():
    from chalicelib.auth import TICKET_VERSION

    signer = TokenSigner([TICKET_SECRET])
    ticket = signer.issue_ticket(TICKET_USER, SID, now=1_000_000)
    version, kid, user, session, expires, nonce, signature = ticket.split(".")
    other_user = "00000000-0000-4000-8000-000000000000"
    token_signature = signer.issue(TICKET_USER, SID).split(".")[4]
    refused = {
        "another secret": TokenSigner(["another-secret-0123456789abcdef"]).issue_ticket(TICKET_USER, SID,
                                                                                       now=1_000_000),
        "another user": ".".join([version, kid, other_user, session, expires, nonce, signature]),
        "another session": ".".join([version, kid, user, other_user, expires, nonce, signature]),
        "another nonce": ".".join([version, kid, user, session, expires, nonce + "x", signature]),
        "a later expiry": ".".join([version, kid, user, session, str(int(expires) + 30), nonce, signature]),
        "a bearer token": signer.issue(TICKET_USER, SID),
        "a token's signature": ".".join([TICKET_VERSION, kid, user, session, expires, nonce, token_signature]),
        "garbage": "not-a-ticket",
    }
    for how, forged in refused.items():
        with pytest.raises(Unauthorized):
            signer.verify_ticket(forged, now=1_000_000)
    # Signed right but claiming to live for an hour: refused as well.
    long_lived = TokenSigner([TICKET_SECRET]).issue_ticket(TICKET_USER, SID, now=1_000_000 + 3600)
    with pytest.raises(Unauthorized):
        signer.verify_ticket(long_lived, now=1_000_000)
    with pytest.raises(Unauthorized):
        signer.verify(ticket)  # and a ticket is no token
