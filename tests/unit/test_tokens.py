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
