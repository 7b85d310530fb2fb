"""The Lambda functions' names, from functions.json: the one list app.py,
the config renderer, the deploy script and Terraform all read."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

_NAMES = json.loads((Path(__file__).resolve().parent / "functions.json").read_text(encoding="utf-8"))

MIGRATE: str = _NAMES["migrate"]
PUSH: str = _NAMES["push"]
FORGET_CONNECTIONS: str = _NAMES["forget_connections"]
PURGE: str = _NAMES["purge"]
WEBSOCKET_HANDLERS: List[str] = list(_NAMES["websocket_handlers"])  # Chalice's own names for them
