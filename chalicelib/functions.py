"""The Lambda functions' names, from functions.json: the one list app.py,
the config renderer and the deploy (scripts/deploy/), scripts/check-infra.sh
and Terraform (infra/) all read."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

_NAMES = json.loads((Path(__file__).resolve().parent / "functions.json").read_text(encoding="utf-8"))["functions"]

API_HANDLER: str = _NAMES["api_handler"]  # Chalice's own name for the REST API's handler
MIGRATE: str = _NAMES["migrate"]
PUSH: str = _NAMES["push"]
FORGET_CONNECTIONS: str = _NAMES["forget_connections"]
PURGE: str = _NAMES["purge"]
WEBSOCKET_HANDLERS: List[str] = list(_NAMES["websocket_handlers"])  # Chalice's own names for them
# Every function, in the file's order, including any added there later
# without a constant of its own (the deploy renders a policy for each).
ALL: List[str] = [name for value in _NAMES.values() for name in (value if isinstance(value, list) else [value])]
