"""Schema migrations: idempotent, runnable as a command and as the migrate
Lambda (the indexes behind every query are checked in test_query_plans.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from chalicelib.db import Database, Tx
from chalicelib.migrate import apply_migrations, available
from chalicelib.settings import PROJECT_ROOT, Settings
from tests.support.mysql import admin_connection, fresh_database

TABLES = {"users", "inbox_counters", "blocks", "chat_groups", "group_members", "messages", "inbox",
          "sessions", "link_codes", "events", "read_markers", "attachments", "schema_migrations"}


def tables_of(database: str) -> set:
    admin = admin_connection()
    try:
        cur = admin.cursor()
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,))
        return {row[0] for row in cur.fetchall()}
    finally:
        admin.close()


@pytest.fixture
def empty_mysql_database(mysql_url: str) -> Iterator[Tuple[str, str]]:
    """(url, name) of a new MariaDB database with no tables; dropped after."""
    with fresh_database("messaging_mig", migrate=False) as created:
        yield created


@pytest.fixture(params=["sqlite", "mysql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    return request.getfixturevalue("empty_mysql_database")[0]


def _schema(db: Database) -> List[Tuple[str, str]]:
    """(table, definition) for every table and index, as the server shows them."""
    if db.kind == "sqlite":
        return db.run(lambda tx: tx.all(
            "SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"),
            write=False)

    def dump(tx: Tx) -> List[Tuple[str, str]]:
        tables = [r[0] for r in tx.all("SELECT table_name FROM information_schema.tables"
                                       " WHERE table_schema = DATABASE() ORDER BY table_name")]
        return [(t, re.sub(r" AUTO_INCREMENT=\d+", "", tx.one(f"SHOW CREATE TABLE `{t}`")[1])) for t in tables]

    return db.run(dump, write=False)


def test_applying_the_migrations_a_second_time_applies_nothing_and_leaves_the_schema_unchanged(empty_database_url):
    db = Database(Settings.from_env({"DATABASE_URL": empty_database_url}))
    try:
        assert apply_migrations(db) == [name for _, name, _ in available()]
        first = _schema(db)
        recorded = db.run(lambda tx: tx.all("SELECT version, name, applied_at FROM schema_migrations"), write=False)

        assert apply_migrations(db) == []

        assert _schema(db) == first
        assert db.run(lambda tx: tx.all("SELECT version, name, applied_at FROM schema_migrations"),
                      write=False) == recorded
    finally:
        db.close()
    assert TABLES <= {table for table, _ in first}


def _migrate_command(database_url: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "chalicelib.migrate"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_migrate_command_creates_every_table_in_an_empty_mariadb_database_and_a_second_run_applies_none(
        empty_mysql_database, mysql_url):
    url, name = empty_mysql_database
    migrations = [name for _, name, _ in available()]

    first = _migrate_command(url)
    assert first.returncode == 0, first.stderr
    assert f"applied {len(migrations)} migration(s): {', '.join(migrations)}" in first.stdout

    assert tables_of(name) == TABLES

    second = _migrate_command(url)
    assert second.returncode == 0, second.stderr
    assert "applied 0 migration(s)" in second.stdout


def test_the_migrate_lambda_function_creates_the_schema_once(empty_mysql_database, monkeypatch):
    from app import migrate

    url, name = empty_mysql_database
    monkeypatch.setenv("DATABASE_URL", url)
    assert migrate({}, None) == {"applied": [migration for _, migration, _ in available()]}
    assert migrate({}, None) == {"applied": []}
    assert tables_of(name) == TABLES
