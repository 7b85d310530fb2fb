"""Credentials that come from a secret (Secrets Manager in the cloud; here a
stand-in source) are fetched once and fetched again when the server refuses
them, so a rotated password needs no redeploy. Real MariaDB and Redis."""
from __future__ import annotations

import json
import uuid

import pytest
import redis as redis_lib

from chalicelib.cache import InboxCache, Miss
from chalicelib.redislink import RedisLink
from chalicelib.db import Database
from chalicelib.secrets import SecretStore, redis_password
from chalicelib.settings import Settings
from tests.support.mysql import TEST_MYSQL_URL, admin_connection
from tests.support.servers import RedisServer, wait_until


class Source:
    def __init__(self, value: str) -> None:
        self.value, self.fetches = value, 0

    def __call__(self, arn: str) -> str:
        self.fetches += 1
        return self.value


@pytest.fixture
def app_user(mysql_url):
    """A MariaDB account of its own, dropped after the test."""
    name, database = f"app_{uuid.uuid4().hex[:8]}", mysql_url.rsplit("/", 1)[1]
    admin = admin_connection()
    admin.cursor().execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'first-password'")
    admin.cursor().execute(f"GRANT SELECT ON `{database}`.* TO '{name}'@'%'")
    yield name, database, admin
    admin.cursor().execute(f"DROP USER '{name}'@'%'")
    admin.close()


def test_a_rotated_database_password_is_fetched_again_when_the_server_refuses_the_old_one(app_user):
    name, database, admin = app_user
    source = Source(json.dumps({"username": name, "password": "first-password"}))
    host = TEST_MYSQL_URL.split("://", 1)[1]
    settings = Settings.from_env({"DATABASE_URL": f"mysql://{host}/{database}", "DB_SECRET_ARN": "arn:db"})
    db = Database(settings, secrets=SecretStore(fetch=source))
    assert db.run(lambda tx: tx.one("SELECT CURRENT_USER()")[0], write=False).startswith(name)
    assert db.run(lambda tx: tx.one("SELECT 1")[0], write=False) == 1
    assert source.fetches == 1
    admin.cursor().execute(f"ALTER USER '{name}'@'%' IDENTIFIED BY 'second-password'")
    source.value = json.dumps({"username": name, "password": "second-password"})
    db.close()  # a new container, or a dropped connection: the next request connects again
    assert db.run(lambda tx: tx.one("SELECT 1")[0], write=False) == 1
    assert source.fetches == 2
    db.close()


def test_a_rotated_redis_password_is_fetched_again_after_the_server_refuses_it(tmp_path):
    server = RedisServer(tmp_path, ["--requirepass", "first-token"]).start()
    try:
        source = Source("first-token")
        store = SecretStore(fetch=source)
        link = RedisLink.from_url(
            f"redis://127.0.0.1:{server.port}/0", connect_timeout=1, timeout=1, backoff_seconds=0.01,
            credentials=lambda refresh: redis_password("arn:redis", store.get("arn:redis", refresh=refresh)))
        cache = InboxCache(link, size=10, ttl_seconds=60, budget_bytes=65_536)
        user = str(uuid.uuid4())
        assert isinstance(cache.read(user_id=user, after=0, limit=10), Miss) and cache.ping()
        admin = redis_lib.Redis(port=server.port, password="first-token")
        admin.config_set("requirepass", "second-token")
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal")  # connections authenticated before rotation
        source.value = "second-token"
        assert not cache.ping()  # refused with the old token; the next connection refetches
        fetches = source.fetches
        wait_until(cache.ping, 5, "the cache did not reconnect with the rotated token")  # after the back-off
        assert source.fetches == fetches + 1
    finally:
        server.stop()
