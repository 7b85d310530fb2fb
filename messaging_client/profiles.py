"""Profiles: the API URL, user id and token of one user on this device (one
session), in a file only its owner can read, beside that user's local store.
A profile never holds a password."""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def home() -> Path:
    """$MESSAGING_HOME, else ~/.config/messaging."""
    return Path(os.environ.get("MESSAGING_HOME") or Path.home() / ".config" / "messaging")


@dataclass(frozen=True)
class Profile:
    name: str
    api: str
    user_id: str
    user_name: str
    token: Optional[str]  # None: signed out on this device (`logout`); `login` or `link` signs in again
    handle: Optional[str] = None
    session_id: Optional[str] = None  # this device's session (None in profiles written before sessions)

    @property
    def store_path(self) -> Path:
        return store_path(self.name)


def store_path(name: str) -> Path:
    return home() / f"{name}.sqlite3"


def _path(name: str) -> Path:
    if not _NAME.fullmatch(name):
        raise ValueError("a profile name is 1-64 letters, digits, '.', '_' or '-'")
    return home() / f"{name}.json"


def load(name: str) -> Optional[Profile]:
    try:
        data = json.loads(_path(name).read_text())
    except FileNotFoundError:
        return None
    return Profile(name=name, **{k: data[k] for k in ("api", "user_id", "user_name")},
                   **{k: data.get(k) for k in ("token", "handle", "session_id")})


def save(profile: Profile) -> Path:
    path = _path(profile.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {k: v for k, v in asdict(profile).items() if k != "name"}
    tmp = path.with_suffix(".tmp")
    # Created 0600 before the token is written: never readable by others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def remove(name: str) -> None:
    """Forget a profile and its local store (the account was deleted)."""
    for path in (_path(name), store_path(name)):
        for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            each.unlink(missing_ok=True)
