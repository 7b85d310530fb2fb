"""The use-case tier: the use cases called directly, with no HTTP and no
environment, once on SQLite and once on MariaDB: a rule is checked below
the edge, on both databases the app runs on.

Each backend has one migrated database for the whole session, of this tier's
own (a temp-file SQLite; a MariaDB database made by fresh_database and
dropped after), never the integration tier's: a purge here would take that
tier's rows with it. Tests share it because every test makes its own users
(fresh UUIDs) and reads only their inboxes; a test that sees the whole
database (a retention purge counts every user's old rows) takes
`empty_deps`, which deletes every row first. Measured on a 2-core host: a
new migrated MariaDB database takes 0.05-0.3 s, a wipe about 10 ms, most
tests less than 20 ms, so one database a session and a wipe only where a
test needs it keep the tier at about a second a backend."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from chalicelib.auth import TokenSigner
from chalicelib.db import Database
from chalicelib.migrate import apply_migrations
from chalicelib.settings import Settings
from chalicelib.usecases import Deps, UseCases

SECRET = "use-case-signing-secret-0123456789"
MAX_MEMBERS = 4  # small, so filling a group is cheap; the largest group a test makes
BACKENDS = ["sqlite", "mysql"]
KEPT_TABLES = {"schema_migrations"}  # what empty_deps leaves: the schema's version


@dataclass(frozen=True)
class TierDatabase:
    backend: str
    url: str
    db: Database

    def delete_every_row(self) -> None:
        """Every table but KEPT_TABLES emptied, through a driver connection of
        its own: the tables are read from the catalog, so nothing here knows
        the schema (foreign keys are off for the wipe, which ignores order)."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url[len("sqlite:///"):], timeout=10, isolation_level=None)
            try:
                conn.execute("PRAGMA foreign_keys = OFF")
                tables = [r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
                conn.execute("BEGIN IMMEDIATE")
                for table in tables:
                    if table not in KEPT_TABLES:
                        conn.execute(f'DELETE FROM "{table}"')
                conn.execute("COMMIT")
            finally:
                conn.close()
            return
        from tests.support.mysql import connect

        conn = connect(self.url, autocommit=False)
        try:
            cur = conn.cursor()
            cur.execute("SET SESSION foreign_key_checks = 0")
            cur.execute("SELECT table_name FROM information_schema.tables"
                        " WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
            for (table,) in cur.fetchall():
                if table not in KEPT_TABLES:
                    cur.execute(f"DELETE FROM `{table}`")
            conn.commit()
        finally:
            conn.close()


def _migrated(backend: str, url: str) -> TierDatabase:
    db = Database(Settings.from_env({"DATABASE_URL": url}))
    apply_migrations(db)
    return TierDatabase(backend, url, db)


@pytest.fixture(scope="session")
def usecase_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierDatabase]:
    path: Path = tmp_path_factory.mktemp("usecases") / "usecases.sqlite3"
    database = _migrated("sqlite", f"sqlite:///{path}")
    yield database
    database.db.close()


@pytest.fixture(scope="session")
def usecase_mysql() -> Iterator[TierDatabase]:
    from tests.support.mysql import fresh_database

    with fresh_database("messaging_uc", migrate=False) as (url, _):
        database = _migrated("mysql", url)
        yield database
        database.db.close()


@pytest.fixture(params=BACKENDS, scope="session")
def usecase_database(request: pytest.FixtureRequest) -> TierDatabase:
    """The tier's database on one backend; every test runs once on each."""
    return request.getfixturevalue(f"usecase_{request.param}")


@pytest.fixture
def deps(usecase_database: TierDatabase) -> Deps:
    return Deps(db=usecase_database.db, signer=TokenSigner([SECRET]),
                auth_enabled=True, max_group_members=MAX_MEMBERS)


@pytest.fixture
def empty_deps(usecase_database: TierDatabase, deps: Deps) -> Deps:
    """`deps` over a database with no rows (for tests that see every user's)."""
    usecase_database.delete_every_row()
    return deps


@pytest.fixture
def uc(deps: Deps) -> UseCases:
    return UseCases(deps)
