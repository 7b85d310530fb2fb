"""Assertions and raw requests shared by the API tests."""
from __future__ import annotations

import json
from typing import Any, Optional


class Raw:
    """A response to a request sent exactly as written (no URL encoding)."""

    def __init__(self, response: Any) -> None:
        self.status = response.status_code
        self.body = json.loads(response.body) if response.body else None
        self.code = self.body.get("Code") if isinstance(self.body, dict) else None

    def __repr__(self) -> str:
        return f"Raw(status={self.status}, body={self.body!r})"


def raw_post(api, path: str, token: Optional[str] = None) -> Raw:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Raw(api.client.http.post(path, headers=headers, body=b""))


def assert_bad_request(r, parameter: str) -> None:
    assert r.status == 400, r
    assert r.code == "BadRequest", r
    assert parameter in r.body["Message"], r
