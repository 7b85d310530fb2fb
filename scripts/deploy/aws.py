"""The AWS calls of the deploy (boto3), and nothing else: what to call with
which values is decided in the steps.

Every call has connect and read timeouts and a bounded number of attempts
(botocore Config); boto3 is imported only when a call is made, so that the
steps' pure logic loads without it.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

# Seconds.
AWS_CONNECT_TIMEOUT = 10
AWS_READ_TIMEOUT = 60
UPLOAD_READ_TIMEOUT = 300
# The Lambda maximum is 900 s; the read must outlast the function.
INVOKE_READ_TIMEOUT = 910
WAIT_DELAY, WAIT_ATTEMPTS = 5, 120  # function_updated_v2: up to 10 minutes


def new_session() -> Any:
    import boto3

    return boto3.Session()


def is_aws_error(exc: BaseException) -> bool:
    """botocore's errors (a refused or failed call, a timeout, no credentials)."""
    return type(exc).__module__.startswith("botocore")


def client(session: Any, service: str, region: str, *, read_timeout: int = AWS_READ_TIMEOUT,
           attempts: int = 3) -> Any:
    from botocore.config import Config

    return session.client(service, region_name=region, config=Config(
        connect_timeout=AWS_CONNECT_TIMEOUT, read_timeout=read_timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"}))


def caller_identity(session: Any, region: str) -> Dict[str, str]:
    return client(session, "sts", region).get_caller_identity()


def function_exists(lambda_client: Any, name: str) -> bool:
    try:
        lambda_client.get_function(FunctionName=name)
        return True
    except lambda_client.exceptions.ResourceNotFoundException:
        return False


def wait_updated(lambda_client: Any, name: str) -> None:
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": WAIT_DELAY, "MaxAttempts": WAIT_ATTEMPTS})


def update_code(session: Any, region: str, name: str, zip_bytes: bytes) -> None:
    lambda_client = client(session, "lambda", region, read_timeout=UPLOAD_READ_TIMEOUT)
    wait_updated(lambda_client, name)  # an update still in progress refuses another
    lambda_client.update_function_code(FunctionName=name, ZipFile=zip_bytes, Publish=False)
    wait_updated(lambda_client, name)


def put_role_policy(session: Any, region: str, role: str, document: Mapping[str, Any]) -> None:
    """The role's inline policy, as chalice deploy would put it (same name,
    same document), so that chalice deploy later finds nothing to change."""
    client(session, "iam", region).put_role_policy(RoleName=role, PolicyName=role,
                                                   PolicyDocument=json.dumps(document, indent=2))


def update_environment(session: Any, region: str, name: str, environment: Mapping[str, str]) -> None:
    # The whole environment: Lambda replaces it, as chalice deploy does.
    lambda_client = client(session, "lambda", region)
    wait_updated(lambda_client, name)
    lambda_client.update_function_configuration(FunctionName=name, Environment={"Variables": dict(environment)})
    wait_updated(lambda_client, name)


def invoke(session: Any, region: str, name: str) -> Tuple[bytes, Optional[str], str]:
    """A synchronous invoke with an empty event: (payload, FunctionError or
    None, the tail of its log)."""
    # One attempt: a retry after a read timeout would run the migrations twice
    # at once (they are idempotent, concurrent DDL is not).
    lambda_client = client(session, "lambda", region, read_timeout=INVOKE_READ_TIMEOUT, attempts=1)
    response = lambda_client.invoke(FunctionName=name, InvocationType="RequestResponse", LogType="Tail",
                                    Payload=b"{}")
    tail = base64.b64decode(response.get("LogResult") or b"").decode("utf-8", "replace")
    return response["Payload"].read(), response.get("FunctionError"), tail


def log_group_exists(session: Any, region: str, name: str) -> bool:
    logs = client(session, "logs", region)
    groups = logs.describe_log_groups(logGroupNamePrefix=name, limit=50)["logGroups"]
    return any(g.get("logGroupName") == name for g in groups)


def set_throttling(session: Any, region: str, api_id: str, stage_name: str,
                   operations: List[Dict[str, str]]) -> Dict[str, Any]:
    """UpdateStage (idempotent: the same values again change nothing); the
    stage's "*/*" method settings as API Gateway now has them."""
    stage = client(session, "apigateway", region).update_stage(restApiId=api_id, stageName=stage_name,
                                                               patchOperations=operations)
    return (stage.get("methodSettings") or {}).get("*/*") or {}


def set_websocket_throttling(session: Any, region: str, request: Mapping[str, Any]) -> Dict[str, Any]:
    """apigatewayv2 UpdateStage with the keyword arguments the step built
    (ApiId, StageName, DefaultRouteSettings; idempotent); the stage's
    DefaultRouteSettings as API Gateway now has them."""
    stage = client(session, "apigatewayv2", region).update_stage(**request)
    return stage.get("DefaultRouteSettings") or {}


def deletion_protected(session: Any, region: str, cluster: str) -> Optional[bool]:
    """DeletionProtection of the Aurora cluster; None when there is none."""
    rds = client(session, "rds", region)
    try:
        clusters = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"]
    except rds.exceptions.DBClusterNotFoundFault:
        return None
    return bool(clusters and clusters[0].get("DeletionProtection"))
