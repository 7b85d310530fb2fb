"""The six least-privilege IAM policies, with the real ARNs (each function's
role is made from one: roles.POLICY_OF):

* policy-<stage>.json, the stage's default (forget_connections and any
  function added later): its functions' log groups, the VPC network
  interfaces (Resource "*", the only one: AWS does not support
  resource-level permissions for those EC2 actions as Lambda uses them),
  GetSecretValue on the app user's, the Redis and the signing secrets
  (never the master secret), kms:Decrypt on the key only through Secrets
  Manager;
* policy-<stage>-migrate.json (migrate): the same, but of the secrets only
  the two database ones, the master's and the app user's;
* policy-<stage>-api.json (the API handler): the same as the default for
  its log group, plus invoking the push function, and the attachments:
  PutObject, GetObject, DeleteObject on attachments/* of the bucket,
  GenerateDataKey and Decrypt on its key through S3 for that bucket only
  (roles.ATTACHMENT_ACCESS);
* policy-<stage>-websocket.json (the WebSocket handlers): the default's,
  plus invoking the push function;
* policy-<stage>-purge.json (purge): the default's, plus GetObject
  (HeadObject) and DeleteObject on attachments/*, no key;
* policy-<stage>-push.json (push, outside the VPC): its log group,
  ManageConnections (POST, GET, DELETE) on the @connections of the stage's
  WebSocket API, invoking forget_connections. Before the first `chalice
  deploy` the API's id is unknown: without it there is no ManageConnections
  at all (and no WEBSOCKET_URL: the app offers no push), and the deploy
  renders again and redeploys once Chalice recorded the id.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..functions import MIGRATE
from .outputs import dns_suffix
from .roles import ATTACHMENTS_PREFIX, database_environment

# What the @connections management API is called with (boto3
# apigatewaymanagementapi: PostToConnection, GetConnection, DeleteConnection).
CONNECTION_METHODS = ["POST", "GET", "DELETE"]

# The network-interface actions a VPC Lambda's execution role needs, as in the
# AWS managed policy AWSLambdaVPCAccessExecutionRole.
ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


def secrets_of(out: Mapping[str, Any], functions: List[str]) -> List[str]:
    """The secrets the functions sharing one policy read: the database secrets
    their DB_SECRET_ARN / APP_DB_SECRET_ARN name, and Redis' and the signing
    secrets for all but migrate (which reads only the database ones)."""
    arns: List[str] = []
    for function in functions:
        wanted = list(database_environment(out, function).values())
        if function != MIGRATE:
            wanted += [out["redis_secret_arn"], out["auth_secret_arn"]]
        arns += [arn for arn in wanted if arn not in arns]
    return arns


def _lambda_arn(out: Mapping[str, Any], name: str) -> str:
    return f"arn:{out['partition']}:lambda:{out['region']}:{out['account_id']}:function:{name}"


def _log_statement(out: Mapping[str, Any], functions: List[str]) -> Dict[str, Any]:
    prefix = f"arn:{out['partition']}:logs:{out['region']}:{out['account_id']}:log-group:/aws/lambda/"
    # Each group and its streams, by exact name: no "<app>-<stage>-*", which
    # would also match functions (and log groups) this stack does not make.
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [arn for name in functions for arn in (f"{prefix}{name}", f"{prefix}{name}:*")],
    }


def _invoke_statement(sid: str, out: Mapping[str, Any], name: str) -> Dict[str, Any]:
    # The function and its qualified forms (":*": versions, aliases; Chalice
    # publishes none): the pair the Lambda guide's endpoint policy example
    # says an Invoke needs, as in the endpoint's policy (infra/network.tf).
    arn = _lambda_arn(out, name)
    return {"Sid": sid, "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": [arn, f"{arn}:*"]}


def attachment_statements(out: Mapping[str, Any], actions: Sequence[str],
                          key_actions: Sequence[str] = ()) -> List[Dict[str, Any]]:
    """`actions` on the objects under attachments/ of the bucket (never the
    bucket itself: no listing, no configuration), and `key_actions` on the
    attachments' key only as S3 uses it for this bucket (the encryption
    context S3 sets is the bucket's ARN with a bucket key, the object's
    without one)."""
    bucket = out["attachments_bucket_arn"]
    statements: List[Dict[str, Any]] = [{
        "Sid": "Attachments",
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": f"{bucket}/{ATTACHMENTS_PREFIX}*",
    }]
    if key_actions:
        statements.append({
            "Sid": "AttachmentsKeyViaS3",
            "Effect": "Allow",
            "Action": list(key_actions),
            "Resource": out["attachments_kms_key_arn"],
            "Condition": {
                "StringEquals": {"kms:ViaService": f"s3.{out['region']}.{dns_suffix(out)}"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/{ATTACHMENTS_PREFIX}*"]},
            },
        })
    return statements


def policy(out: Mapping[str, Any], functions: List[str], *, secrets: List[str],
           push_function: Optional[str] = None, attachments: Sequence[str] = (),
           attachment_key: Sequence[str] = ()) -> Dict[str, Any]:
    """Least privilege for the in-VPC Lambdas named `functions` (each gets a
    role of its own made from this file): reading exactly `secrets`; with
    push_function, the right to invoke it (the API and the WebSocket handlers
    hand it their posts); with attachments (and attachment_key), those
    actions on attachments/* of the bucket (and on its key through S3)."""
    statements = [
        _log_statement(out, functions),
        {
            # AWS requires "*" here: these EC2 actions, as Lambda calls them
            # to attach the function to its subnets, take no resource ARN.
            "Sid": "VpcNetworkInterfaces",
            "Effect": "Allow",
            "Action": list(ENI_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "ReadAppSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": list(secrets),
        },
        {
            "Sid": "DecryptAppSecretsViaSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": out["kms_key_arn"],
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{out['region']}.{dns_suffix(out)}"}},
        },
    ]
    if push_function:
        statements.append(_invoke_statement("InvokePush", out, push_function))
    if attachments:
        statements += attachment_statements(out, attachments, attachment_key)
    return {"Version": "2012-10-17", "Statement": statements}


def push_policy(out: Mapping[str, Any], push_function: str, forget_function: str, *, api_id: Optional[str],
                api_gateway_stage: str) -> Dict[str, Any]:
    """The push function's (outside the VPC): post to the connections of this
    stage's WebSocket API only, have forget_connections drop the gone ones,
    write its log group. No secrets, no network interfaces."""
    statements = [_log_statement(out, [push_function])]
    if api_id:
        # arn:...:execute-api:<region>:<account>:<api-id>/<stage>/<method>/@connections/<connection-id>
        # (API Gateway developer guide, "Control access to WebSocket APIs with IAM authorization").
        api = f"arn:{out['partition']}:execute-api:{out['region']}:{out['account_id']}:{api_id}/{api_gateway_stage}"
        statements.append({
            "Sid": "ManageOwnConnections",
            "Effect": "Allow",
            "Action": "execute-api:ManageConnections",
            "Resource": [f"{api}/{method}/@connections/*" for method in CONNECTION_METHODS],
        })
    statements.append(_invoke_statement("InvokeForgetConnections", out, forget_function))
    return {"Version": "2012-10-17", "Statement": statements}
