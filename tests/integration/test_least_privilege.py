"""The API's own MariaDB user: made by the migration step with only the
statements the app runs on its tables. The API works as it, and it cannot
change the schema."""
from __future__ import annotations

import uuid
from typing import Iterator, Tuple

import pymysql
import pytest

from chalicelib import wiring
from chalicelib.db import Database
from chalicelib.dialects import parse_mysql_url
from chalicelib.migrate import APP_GRANTS, ensure_app_user
from chalicelib.settings import Settings
from tests.conftest import TEST_AUTH_SECRET
from tests.support.mysql import admin_sql, connect, fresh_database


@pytest.fixture
def app_user() -> Iterator[Tuple[str, str]]:
    """(the app user's DATABASE_URL, the database's name) on a fresh, migrated database."""
    name, password = f"app_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    with fresh_database("messaging_lp") as (admin_url, database):
        db = Database(Settings.from_env({"DATABASE_URL": admin_url}))
        ensure_app_user(db, user=name, password=password)
        ensure_app_user(db, user=name, password=password)  # again (every deploy): idempotent
        db.close()
        t = parse_mysql_url(admin_url)
        try:
            yield f"mysql://{name}:{password}@{t.host}:{t.port}/{database}", database
        finally:
            admin_sql(f"DROP USER IF EXISTS '{name}'@'%'")


def _table_grants(url: str) -> tuple:
    """(each table's privileges as SHOW GRANTS lists them for the URL's user, every grant line)."""
    conn = connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SHOW GRANTS")
        grants = [row[0] for row in cur.fetchall()]
    finally:
        conn.close()
    table_grants = {g.split(" ON ")[1].split(" TO ")[0].split(".")[1].strip("`"): g.split(" ON ")[0][len("GRANT "):]
                    for g in grants if ".`" in g}
    return {t: set(p.split(", ")) for t, p in table_grants.items()}, grants


APP_TABLE_GRANTS = {t: set(p.split(", ")) for t, p in APP_GRANTS.items()}


@pytest.mark.parametrize("ddl", ["DROP TABLE inbox", "ALTER TABLE users ADD COLUMN x INT", "TRUNCATE TABLE messages",
                                 "CREATE TABLE spare (id INT)", "DELETE FROM schema_migrations",
                                 "SELECT * FROM schema_migrations", "UPDATE events SET seq = 0"])
def test_the_app_user_cannot_change_the_schema_or_touch_what_the_app_does_not(app_user, ddl):
    conn = connect(app_user[0])
    try:
        with pytest.raises(pymysql.err.OperationalError) as err:
            conn.cursor().execute(ddl)
        assert err.value.args[0] in (1142, 1044), err.value  # command denied to user
    finally:
        conn.close()


def test_the_api_works_as_the_app_user(app_user, monkeypatch):
    from chalice.test import Client

    from app import app
    from tests.conftest import Api

    url, _ = app_user
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("AUTH_SECRET", TEST_AUTH_SECRET)
    monkeypatch.setenv("RETENTION_DAYS", "30")
    for name in ("REDIS_URL", "DB_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    wiring.reset()
    try:
        with Client(app) as client:
            api = Api(client)
            alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
            assert api.block(carol, alice).status == 200 and api.block(carol, alice, 0).status == 200
            group = api.create_group(alice)
            for member in (alice, bob, carol):
                assert api.join(member, group).status == 200
            assert api.join(carol, group, 0).status == 200
            assert api.send(alice, bob, "direct", client_message_id="k1").status == 201
            assert api.send(alice, bob, "direct", client_message_id="k1").status == 200  # the replay reads
            assert api.send_group(alice, group, "group").body["recipients"] == 1
            assert [m["text"] for m in api.read_all(bob)] == ["direct", "group"]
            assert api.read(bob, min_timestamp="2024-07-01").status == 200
            assert wiring.service().retention.purge().finished  # DELETE, as the purge job
    finally:
        wiring.reset()


def test_the_grants_are_exactly_the_app_tables_statements(app_user):
    table_grants, grants = _table_grants(app_user[0])
    assert table_grants == APP_TABLE_GRANTS
    assert all("ALL PRIVILEGES" not in g and "*.*" not in g or "USAGE" in g for g in grants), grants


def test_the_migrate_lambda_gives_the_user_named_by_app_db_secret_arn_its_grants(monkeypatch):
    import json

    from app import migrate
    from tests.support.secretsmanager import SecretsManager

    name, password = f"app_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:messaging-app-db-AbCdEf"
    server = SecretsManager().start()
    server.secrets[arn] = json.dumps({"username": name, "password": password})
    try:
        with fresh_database("messaging_lp", migrate=False) as (admin_url, database):
            for key, value in {**server.environment(), "DATABASE_URL": admin_url, "APP_DB_SECRET_ARN": arn}.items():
                monkeypatch.setenv(key, value)
            monkeypatch.delenv("DB_SECRET_ARN", raising=False)
            assert migrate({}, None)["applied"][0] == "0001_initial"
            t = parse_mysql_url(admin_url)
            app_url = f"mysql://{name}:{password}@{t.host}:{t.port}/{database}"
            conn = connect(app_url)
            conn.cursor().execute("SELECT COUNT(*) FROM inbox")
            conn.close()
            assert _table_grants(app_url)[0] == APP_TABLE_GRANTS  # its grants: these and no more
    finally:
        server.stop()
        admin_sql(f"DROP USER IF EXISTS '{name}'@'%'")
