"""Password hashes: argon2id (argon2-cffi), OWASP's first choice, with
OWASP's first listed parameters: 19 MiB of memory, 2 passes, 1 lane. One
hash takes about 30 ms on one core here (`make bench` measures it) and
19 MiB of a Lambda's memory; the 512 MB API Lambda serves one request at a
time, so a login never competes with another for that memory.

The parameters are written into each hash (`$argon2id$v=19$m=19456,t=2,p=1$...`),
so they can be raised later without resetting anyone: a login whose hash
was made with other parameters than these is re-hashed with the new
ones (needs_rehash). Comparison is constant-time (argon2's own verify).

argon2 is imported on first use, so only requests that hash pay its import.
"""
from __future__ import annotations

import functools
from typing import Any

TIME_COST, MEMORY_KIB, PARALLELISM = 2, 19 * 1024, 1


@functools.lru_cache(maxsize=None)
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


@functools.lru_cache(maxsize=None)
def _dummy() -> str:
    """A hash of nothing anyone can type, verified against when the handle is
    unknown, so that answer takes as long as a wrong password's."""
    return hash_password("\x00 no account has this password \x00")


def verify(stored: Any, password: str) -> bool:
    """Whether `password` is the one `stored` was made of; `stored` None (no
    such account, or no password set) costs the same time and is False."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(stored or _dummy(), password)) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return bool(_hasher().check_needs_rehash(stored))
