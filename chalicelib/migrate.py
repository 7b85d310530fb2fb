"""Versioned schema migrations: `python -m chalicelib.migrate`.

Applies every `migrations/NNNN_name.sql` not yet recorded in
`schema_migrations`, in order, to the database named by DATABASE_URL (which
must exist). Idempotent; never run per request. Run one at a time: MySQL DDL
commits by itself, so a migration is not atomic there.
"""
from __future__ import annotations

import functools
import logging
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Tuple

from .db import Database, Tx
from .dialects import to_db_time
from .settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")

log = logging.getLogger(__name__)


def available() -> List[Tuple[int, str, List[str]]]:
    """(version, name, statements) for each migration file, in order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.iterdir()):
        match = _FILE.fullmatch(path.name)
        if not match:
            continue
        text = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("--")
        )
        statements = [s.strip() for s in text.split(";") if s.strip()]
        found.append((int(match.group(1)), path.stem, statements))
    return found


def _ddl(db: Database, statement: str) -> str:
    if statement.upper().startswith("CREATE TABLE"):
        return statement + db.dialect.table_options
    return statement


def apply_migrations(db: Database) -> List[str]:
    """Apply what is missing; return the names applied."""
    applied_now: List[str] = []

    def bootstrap(tx: Tx) -> None:
        tx.execute(
            _ddl(
                db,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INT NOT NULL, name VARCHAR(200) NOT NULL,"
                " applied_at DATETIME(6) NOT NULL, PRIMARY KEY (version))",
            )
        )

    db.run(bootstrap, write=True)
    for version, name, statements in available():
        if db.run(functools.partial(_apply, db, version, name, statements), write=True):
            applied_now.append(name)
            log.info("applied migration %s", name)
    return applied_now


def _apply(db: Database, version: int, name: str, statements: List[str], tx: Tx) -> bool:
    """One migration in its unit of work; False when it was applied before."""
    if tx.one("SELECT 1 FROM schema_migrations WHERE version = %s", (version,)):
        return False
    for statement in statements:
        tx.execute(_ddl(db, statement))
    tx.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
        (version, name, to_db_time(datetime.now(timezone.utc))),
    )
    return True


# What the API's database user may do, table by table: the statements the
# app runs and nothing else (no DDL, no DROP, no access to other tables).
APP_GRANTS = {
    "users": "SELECT, INSERT, UPDATE",  # UPDATE: names, handles, passwords, deletion
    "inbox_counters": "SELECT, INSERT, UPDATE, DELETE",  # DELETE: a deleted account's stream
    "sessions": "SELECT, INSERT, UPDATE",
    "link_codes": "SELECT, INSERT, DELETE",
    "blocks": "SELECT, INSERT, DELETE",
    "chat_groups": "SELECT, INSERT, UPDATE",
    "group_members": "SELECT, INSERT, UPDATE, DELETE",  # UPDATE: joined_seq
    "messages": "SELECT, INSERT, UPDATE, DELETE",  # UPDATE: edits and deletions; DELETE: retention
    "inbox": "SELECT, INSERT, UPDATE, DELETE",  # UPDATE: a deleted message stops counting as unread
    "events": "SELECT, INSERT, DELETE",
    "read_markers": "SELECT, INSERT, UPDATE, DELETE",
    "attachments": "SELECT, INSERT, UPDATE, DELETE",
}
_USER_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")


def ensure_app_user(db: Database, *, user: str, password: str) -> None:
    """Create (or give a new password to) the API's own database user, with
    only APP_GRANTS on this database's tables. MySQL only: the embedded
    SQLite file has no users. Run by the migrate Lambda as the admin."""
    if db.kind != "mysql":
        return
    if not _USER_NAME.fullmatch(user):
        raise ValueError("the app database user's name must be 1-32 letters, digits or _")

    def work(tx: Tx) -> None:
        row = tx.one("SELECT DATABASE()")
        if row is None:
            raise RuntimeError("the connection has no database")
        database = row[0]
        # Checked above: safe to quote as is (identifiers cannot be parameters);
        # %% because the driver formats every statement.
        account = f"'{user}'@'%%'"
        tx.execute(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY %s", (password,))
        tx.execute(f"ALTER USER {account} IDENTIFIED BY %s", (password,))  # a rotated secret
        for table, privileges in APP_GRANTS.items():
            tx.execute(f"GRANT {privileges} ON `{database}`.`{table}` TO {account}")

    db.run(work, write=True)
    log.info("the app database user %s has its grants", user)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    db = Database(Settings.from_env())
    applied = apply_migrations(db)
    print(f"{db.kind}: applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
