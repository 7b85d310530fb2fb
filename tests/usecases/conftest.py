"""The use-case tier: the use cases called directly, on a temp-file SQLite
database, with no HTTP and no environment: a rule is checked below the edge."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from chalicelib.auth import TokenSigner
from chalicelib.db import Database
from chalicelib.migrate import apply_migrations
from chalicelib.settings import Settings
from chalicelib.usecases import Deps, UseCases

MAX_MEMBERS = 3


@pytest.fixture
def deps(tmp_path: Path) -> Iterator[Deps]:
    db = Database(Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'usecases.sqlite3'}"}))
    apply_migrations(db)
    yield Deps(db=db, signer=TokenSigner(["use-case-signing-secret-0123456789"]), auth_enabled=True,
               max_group_members=MAX_MEMBERS)
    db.close()


@pytest.fixture
def uc(deps: Deps) -> UseCases:
    return UseCases(deps)
