"""The bodies of the app's Lambda functions that serve no request (app.py
registers them under the names of functions.json): migrate, push and
forget_connections. The hourly purge is a use case (usecases/retention.py)."""
from __future__ import annotations

from typing import Dict, List

from .db import Database
from .migrate import apply_migrations, ensure_app_user
from .push import DirectPusher, invoke_async
from .secrets import SecretStore, database_credentials
from .settings import Settings
from .wiring import service


def migrate() -> List[str]:
    """Apply pending migrations to the configured database (the `migrate`
    Lambda, as the admin), then give the API's own user its grants when
    APP_DB_SECRET_ARN names its credentials."""
    settings = Settings.from_env()
    secrets = SecretStore()
    db = Database(settings, secrets=secrets)
    try:
        applied = apply_migrations(db)
        if settings.app_db_secret_arn:
            user, password = database_credentials(settings.app_db_secret_arn,
                                                  secrets.get(settings.app_db_secret_arn))
            ensure_app_user(db, user=user, password=password)
        return applied
    finally:
        db.close()


_posters: Dict[str, DirectPusher] = {}  # one per @connections endpoint, per container


def push(event: dict) -> dict:
    """The `push` Lambda (outside the VPC): post, then have the in-VPC
    `forget_connections` Lambda drop the connections found gone."""
    settings = Settings.from_env()
    endpoint = event["endpoint"]
    poster = _posters.get(endpoint)
    if poster is None:
        poster = _posters[endpoint] = DirectPusher(endpoint, timeout_seconds=settings.push_timeout_seconds)
    if "close" in event:  # a signed-out session's connections
        poster.close(list(event["close"]))
        return {"gone": 0}
    if "posts" in event:
        gone = poster.post([tuple(p) for p in event["posts"]])
    else:
        gone = poster.push(event["item"], [tuple(t) for t in event["targets"]])
    if gone and settings.forget_function:
        invoke_async(settings.forget_function, {"gone": [list(g) for g in gone]},
                     timeout_seconds=settings.push_timeout_seconds)
    return {"gone": len(gone)}


def forget_connections(event: dict) -> dict:
    """The `forget_connections` Lambda (in the VPC, beside Redis)."""
    service().live.forget([tuple(g) for g in event.get("gone", [])])
    return {"forgotten": len(event.get("gone", []))}
