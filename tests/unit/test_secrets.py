import json

import pytest

from chalicelib import secrets as s
from chalicelib.auth import TokenSigner
from chalicelib.errors import Unauthorized
from chalicelib.settings import ConfigError

UID = "2e86f3d2-9705-4acb-b1c7-980e5bb05ada"
OLD, NEW = "old-signing-secret-0123456789", "new-signing-secret-0123456789"


class Source:
    """Stands in for Secrets Manager: a dict of ARN -> SecretString, counting fetches."""

    def __init__(self, values):
        self.values, self.fetches = dict(values), 0

    def __call__(self, arn):
        self.fetches += 1
        return self.values[arn]


def test_a_secret_is_fetched_once_and_again_only_when_asked_to_refresh():
    source = Source({"arn:db": "v1"})
    store = s.SecretStore(fetch=source)
    assert store.get("arn:db") == store.get("arn:db") == "v1" and source.fetches == 1
    source.values["arn:db"] = "v2"
    assert store.get("arn:db") == "v1"
    assert store.get("arn:db", refresh=True) == "v2" and source.fetches == 2


def test_secret_formats_are_read_as_rds_elasticache_and_the_app_store_them():
    assert s.database_credentials("arn:db", json.dumps({"username": "admin", "password": "p"})) == ("admin", "p")
    assert s.redis_password("arn:redis", "plain-token") == (None, "plain-token")
    assert s.redis_password("arn:redis", json.dumps({"auth_token": "t"})) == (None, "t")
    assert s.redis_password("arn:redis", json.dumps({"username": "app", "password": "p"})) == ("app", "p")
    assert s.signing_secrets("arn:auth", f"{NEW}\n{OLD}") == [NEW, OLD]
    assert s.signing_secrets("arn:auth", json.dumps({"secrets": [NEW, OLD]})) == [NEW, OLD]


def test_a_token_signed_with_a_key_added_by_rotation_verifies_after_one_refetch(monkeypatch):
    source = Source({"arn:auth": OLD})
    clock = [1000.0]
    monkeypatch.setattr(s.time, "monotonic", lambda: clock[0])
    signing = s.RefreshingSigningSecrets(s.SecretStore(fetch=source), "arn:auth")
    signer = TokenSigner(signing.load(), reload=lambda: signing.load(refresh=True))
    source.values["arn:auth"] = f"{NEW} {OLD}"  # rotated: another container signs with NEW
    clock[0] += s.SIGNING_REFRESH_SECONDS + 1
    assert signer.verify(TokenSigner([NEW]).issue(UID, UID)).user_id == UID
    assert signer.verify(TokenSigner([OLD]).issue(UID, UID)).user_id == UID
    assert source.fetches == 2


def test_unknown_key_ids_refetch_at_most_once_a_minute(monkeypatch):
    source = Source({"arn:auth": OLD})
    clock = [1000.0]
    monkeypatch.setattr(s.time, "monotonic", lambda: clock[0])
    signing = s.RefreshingSigningSecrets(s.SecretStore(fetch=source), "arn:auth")
    signer = TokenSigner(signing.load(), reload=lambda: signing.load(refresh=True))
    forged = TokenSigner(["attacker-secret-0123456789"]).issue(UID, UID)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            signer.verify(forged)
    assert source.fetches == 1, "garbage tokens must not hammer Secrets Manager"
    clock[0] += s.SIGNING_REFRESH_SECONDS + 1
    with pytest.raises(Unauthorized):
        signer.verify(forged)
    assert source.fetches == 2


def test_a_secret_removed_by_rotation_stops_verifying_and_signing_within_the_refresh_interval():
    source = Source({"arn:auth": f"{OLD}"})
    clock = [1000.0]
    signing = s.RefreshingSigningSecrets(s.SecretStore(fetch=source), "arn:auth", clock=lambda: clock[0])
    signer = TokenSigner(signing.load(), reload=lambda: signing.load(refresh=True), due=signing.due)
    old_token = signer.issue(UID, UID)
    source.values["arn:auth"] = NEW  # rotated: OLD removed
    clock[0] += s.SIGNING_MAX_AGE_SECONDS - 1
    assert signer.verify(old_token).user_id == UID  # within the interval the container still knows OLD
    clock[0] += 2
    with pytest.raises(Unauthorized):
        signer.verify(old_token)
    assert signer.issue(UID, UID) == TokenSigner([NEW]).issue(UID, UID)  # and signs with NEW
    assert source.fetches == 2


def test_a_failed_refresh_keeps_the_current_secrets_and_tries_again_a_minute_later():
    class Flaky(Source):
        down = False

        def __call__(self, arn):
            if self.down:
                self.fetches += 1
                raise ConnectionError("Secrets Manager unreachable")
            return super().__call__(arn)

    source = Flaky({"arn:auth": OLD})
    clock = [1000.0]
    signing = s.RefreshingSigningSecrets(s.SecretStore(fetch=source), "arn:auth", clock=lambda: clock[0])
    signer = TokenSigner(signing.load(), due=signing.due)
    token = signer.issue(UID, UID)
    source.down = True
    clock[0] += s.SIGNING_MAX_AGE_SECONDS + 1
    assert signer.verify(token).user_id == UID and source.fetches == 2
    assert signer.verify(token).user_id == UID and source.fetches == 2  # not again at once
    clock[0] += s.SIGNING_REFRESH_SECONDS + 1
    assert signer.verify(token).user_id == UID and source.fetches == 3


@pytest.mark.parametrize("parse, value, field", [
    (s.database_credentials, '["admin", "p"]', "username"),
    (s.database_credentials, '{"username": "admin"}', "password"),
    (s.redis_password, '{"token": "t"}', "password"),
    (s.redis_password, '42', "password"),
    (s.signing_secrets, '{"keys": ["a-secret-of-sixteen-chars"]}', "secrets"),
    (s.signing_secrets, '["a-secret-of-sixteen-chars"]', "secrets"),
])
def test_a_secret_of_the_wrong_shape_is_a_config_error_naming_the_arn_and_field_not_the_value(parse, value, field):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-x1y2z3"
    with pytest.raises(ConfigError) as err:
        parse(arn, value)
    message = str(err.value)
    assert arn in message and field in message, message
    assert "admin" not in message and "sixteen" not in message and "42" not in message.replace(arn, "")
