"""Who each function is: the policy file its role is made from, the
database user it connects as and what it may do with the attachments
bucket. All are per function, with a default that gives a function added
to chalicelib/functions.json later the least: the stage's in-VPC policy (no
push, no master secret, no bucket) and no database credentials at all,
rather than the master's."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ..functions import API_HANDLER, FORGET_CONNECTIONS, MIGRATE, PURGE, PUSH, WEBSOCKET_HANDLERS

# Which policy file each function's role is made from (the suffix of
# "policy-<stage>"; with autogen_policy false Chalice gives every function a
# role of its own, made from the file its iam_policy_file names). "" is the
# stage's own iam_policy_file, the default.
# The API handler and purge have files of their own because they alone reach
# the attachments bucket (ATTACHMENT_ACCESS); the WebSocket handlers share
# one (invoking push, like the API, but no bucket).
POLICY_OF = {API_HANDLER: "-api", **{h: "-websocket" for h in WEBSOCKET_HANDLERS}, PUSH: "-push",
             MIGRATE: "-migrate", PURGE: "-purge", FORGET_CONNECTIONS: ""}
# Every policy file, the stage's default ("") first, in the order they are written.
POLICY_SUFFIXES = ("", "-migrate", "-api", "-websocket", "-purge", "-push")

# What each function may do with the attachments (objects under
# ATTACHMENTS_PREFIX of the bucket, output attachments_bucket_arn, whose name
# it gets as ATTACHMENTS_BUCKET), and with their KMS key through S3; no
# other function has either. The API handler signs the presigned POSTs
# (uploads: PutObject, the data key) and GETs (downloads: GetObject,
# Decrypt) the browsers use, and checks (HeadObject is GetObject) and
# deletes objects; purge checks and deletes, and never reads or writes an
# object's content (HeadObject and DeleteObject use no key). No ListBucket
# anywhere: without it a missing key answers HeadObject with 403, not 404.
ATTACHMENTS_PREFIX = "attachments/"
ATTACHMENT_ACCESS = {API_HANDLER: ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"),
                     PURGE: ("s3:GetObject", "s3:DeleteObject")}
ATTACHMENT_KEY_ACCESS = {API_HANDLER: ("kms:GenerateDataKey", "kms:Decrypt")}
ATTACHMENTS_ENV = "ATTACHMENTS_BUCKET"

# The database user of each function, by the secret its DB_SECRET_ARN names:
# the app user (DML only) for everything that serves and for purge (SELECT
# and DELETE), the master user for migrate alone (with APP_DB_SECRET_ARN, the
# app user's secret, so that it can create that user), none for push
# (outside the VPC, no database). Per function
# (lambda_functions.<name>.environment_variables, which Chalice merges over
# the stage's: chalice/config.py, _chain_merge), never stage-wide.
DB_USER_OF = {API_HANDLER: "app", **{h: "app" for h in WEBSOCKET_HANDLERS}, FORGET_CONNECTIONS: "app", PURGE: "app",
              MIGRATE: "master", PUSH: None}
DB_ENV = ("DB_SECRET_ARN", "APP_DB_SECRET_ARN")


def policy_suffix(function: str) -> str:
    return POLICY_OF.get(function, "")


def policy_file_name(stage_name: str, function: str) -> str:
    return f"policy-{stage_name}{policy_suffix(function)}.json"


def db_user(function: str) -> Optional[str]:
    return DB_USER_OF.get(function)


def database_environment(out: Mapping[str, Any], function: str) -> Dict[str, str]:
    """The database credentials of one function (DB_USER_OF)."""
    user = db_user(function)
    if user == "master":
        return {"DB_SECRET_ARN": out["db_secret_arn"], "APP_DB_SECRET_ARN": out["db_app_secret_arn"]}
    if user == "app":
        return {"DB_SECRET_ARN": out["db_app_secret_arn"]}
    return {}
