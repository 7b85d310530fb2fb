"""Databases of the test run's own on the MariaDB server under test."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Tuple

import pymysql

from chalicelib.db import Database
from chalicelib.dialects import parse_mysql_url
from chalicelib.migrate import apply_migrations
from chalicelib.settings import Settings

# The suite's own MariaDB user, made by scripts/ensure-services.sh (`make test`).
URL_FILE = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "messaging-tests" / "mysql-url"


def _test_mysql_url() -> str:
    if os.environ.get("TEST_MYSQL_URL"):
        return os.environ["TEST_MYSQL_URL"].rstrip("/")
    try:
        return URL_FILE.read_text().strip().rstrip("/")
    except FileNotFoundError:
        raise RuntimeError(f"no {URL_FILE}: run the suite with `make test` (it creates the test user)") from None


TEST_MYSQL_URL = _test_mysql_url()


def connect(url: str, **options: Any) -> Any:
    """A plain PyMySQL connection to a mysql:// URL (autocommit unless told)."""
    t = parse_mysql_url(url)
    return pymysql.connect(host=t.host, port=t.port, user=t.user, password=t.password, database=t.database,
                           ssl_disabled=True, **{"autocommit": True, **options})


def admin_connection() -> Any:
    return connect(TEST_MYSQL_URL + "/")


def admin_sql(sql: str) -> None:
    conn = admin_connection()
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


@contextmanager
def fresh_database(prefix: str, *, migrate: bool = True) -> Iterator[Tuple[str, str]]:
    """(url, name) of a new database, migrated unless told not to; dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    url = f"{TEST_MYSQL_URL}/{name}"
    try:
        if migrate:
            db = Database(Settings.from_env({"DATABASE_URL": url}))
            apply_migrations(db)
            db.close()
        yield url, name
    finally:
        admin_sql(f"DROP DATABASE IF EXISTS `{name}`")
