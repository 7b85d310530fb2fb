"""The outputs of the infra/ Terraform root (`terraform output -json`), each
checked before anything is rendered from it; the deploy checks the stage,
region and API ids it handles by the same rules."""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Mapping, Optional

_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-b)?"
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG = re.compile(r"^sg-[0-9a-f]{8,17}$")
_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_SECRET_ARN = re.compile(rf"^arn:(?P<partition>{_PARTITION}):secretsmanager:(?P<region>[a-z0-9-]+)"
                         rf":(?P<account>\d{{12}}):secret:[A-Za-z0-9/_+=.@!-]+$")
_LOG_GROUP = re.compile(r"^/aws/lambda/[A-Za-z0-9_-]{1,64}$")
_KMS_ARN = re.compile(rf"^arn:(?P<partition>{_PARTITION}):kms:(?P<region>[a-z0-9-]+)"
                      rf":(?P<account>\d{{12}}):key/(mrk-)?[0-9a-f-]{{32,36}}$")
_FUNCTION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# S3 bucket names (general purpose): 3-63 lowercase letters, digits, dots and
# hyphens, a letter or digit at each end; here never with dots (no IP form).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_BUCKET_ARN = re.compile(rf"^arn:(?P<partition>{_PARTITION}):s3:::(?P<bucket>[a-z0-9][a-z0-9-]{{1,61}}[a-z0-9])$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
# The rule of var.stage in infra/variables.tf.
STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,9}$")
# API Gateway ids: lowercase letters and digits (10 of them in practice).
API_ID_PATTERN = re.compile(r"^[a-z0-9]{1,32}$")
# API Gateway stage names (var.api_gateway_stage in infra/variables.tf).
_API_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class OutputError(ValueError):
    """The Terraform outputs are missing something or hold an unexpected value."""


def _string(pattern: Optional[re.Pattern] = None) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise OutputError(f"output {name} must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise OutputError(f"output {name} has an unexpected form: {value!r}")
        return value
    return check


def _port(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise OutputError(f"output {name} must be a port number, got {value!r}")
    return value


def _whole(low: int, high: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON numbers from Terraform may arrive as 50.0
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise OutputError(f"output {name} must be a whole number from {low} to {high}, got {value!r}")
        return value
    return check


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10_000:
        raise OutputError(f"output {name} must be a number of requests per second in (0, 10000], got {value!r}")
    return value


def _log_groups(name: str, value: Any) -> Dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise OutputError(f"output {name} must map function names to log groups, got {value!r}")
    return {k: _string(_LOG_GROUP)(f"{name}.{k}", v) for k, v in value.items()}


def _subnets(name: str, value: Any) -> List[str]:
    if not isinstance(value, list) or len(value) < 2 or len(set(value)) != len(value):
        raise OutputError(f"output {name} must list at least two distinct subnets, got {value!r}")
    return [_string(_SUBNET)(name, v) for v in value]


REQUIRED_OUTPUTS: Dict[str, Callable[[str, Any], Any]] = {
    "region": _string(REGION_PATTERN),
    "stage": _string(STAGE_PATTERN),
    "subnet_ids": _subnets,
    "lambda_security_group_id": _string(_SG),
    "db_endpoint": _string(_HOST),
    "db_port": _port,
    "db_name": _string(_DB_NAME),
    "db_secret_arn": _string(_SECRET_ARN),
    "db_app_secret_arn": _string(_SECRET_ARN),
    "redis_endpoint": _string(_HOST),
    "redis_port": _port,
    "redis_secret_arn": _string(_SECRET_ARN),
    "auth_secret_arn": _string(_SECRET_ARN),
    "kms_key_arn": _string(_KMS_ARN),
    "lambda_log_group_name": _string(_LOG_GROUP),
    "migrate_log_group_name": _string(_LOG_GROUP),
    "function_log_group_names": _log_groups,
    "push_function_name": _string(_FUNCTION),
    "api_gateway_stage": _string(_API_STAGE),
    # The same bounds as the variables' validation in infra/variables.tf.
    "api_throttle_rate_limit": _rate,
    "api_throttle_burst_limit": _whole(1, 5_000),
    "websocket_throttle_rate_limit": _rate,
    "websocket_throttle_burst_limit": _whole(1, 5_000),
    "api_reserved_concurrency": _whole(1, 1_000),
    "retention_days": _whole(0, 36_500),  # 0: keep every message
    # The attachments bucket (infra/attachments.tf) and the key of its SSE-KMS.
    "attachments_bucket_name": _string(_BUCKET),
    "attachments_bucket_arn": _string(_BUCKET_ARN),
    "attachments_kms_key_arn": _string(_KMS_ARN),
}


SECRET_OUTPUTS = ("db_secret_arn", "db_app_secret_arn", "redis_secret_arn", "auth_secret_arn")
KMS_OUTPUTS = ("kms_key_arn", "attachments_kms_key_arn")


def load_outputs(text: str) -> Dict[str, Any]:
    """The checked values of `terraform output -json` ({name: {sensitive, type, value}}),
    with the partition and account_id the ARNs agree on."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise OutputError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise OutputError("expected the object printed by `terraform output -json`")
    missing = sorted(set(REQUIRED_OUTPUTS) - set(raw))
    if missing:
        raise OutputError(f"missing outputs: {', '.join(missing)} (was `terraform apply` run in infra/?)")
    values: Dict[str, Any] = {}
    for name, check in REQUIRED_OUTPUTS.items():
        entry = raw[name]
        if not isinstance(entry, dict) or "value" not in entry:
            raise OutputError(f"output {name} is not in the `terraform output -json` shape")
        values[name] = check(name, entry["value"])

    # Every ARN must be of the same account, partition and region as the stack.
    arns = {k: values[k] for k in (*SECRET_OUTPUTS, *KMS_OUTPUTS)}
    parsed: Dict[str, "re.Match[str]"] = {}
    for k, v in arns.items():
        match = (_KMS_ARN if k in KMS_OUTPUTS else _SECRET_ARN).match(v)
        if match is None:  # each output's own check matched it already
            raise OutputError(f"output {k} is not an ARN of its kind")
        parsed[k] = match
    for key in ("partition", "account", "region"):
        seen = {m.group(key) for m in parsed.values()}
        if len(seen) != 1:
            raise OutputError(f"the ARNs disagree on the {key}: {sorted(seen)}")
    kms = parsed["kms_key_arn"]
    values["partition"] = kms.group("partition")
    values["account_id"] = kms.group("account")
    if kms.group("region") != values["region"]:
        raise OutputError(f"the ARNs are in {kms.group('region')}, output region is {values['region']}")
    if len({arns[k] for k in SECRET_OUTPUTS}) != len(SECRET_OUTPUTS):
        raise OutputError(f"the {len(SECRET_OUTPUTS)} secret ARNs must be distinct")
    # S3 ARNs name neither account nor region: the partition, and that the
    # ARN is the named bucket's (the policies grant the ARN, the app gets the name).
    bucket = _BUCKET_ARN.match(values["attachments_bucket_arn"])
    if bucket is None:  # its own check matched it already
        raise OutputError("output attachments_bucket_arn is not an S3 bucket ARN")
    if bucket.group("partition") != values["partition"]:
        raise OutputError("the ARNs disagree on the partition: "
                          f"{sorted({bucket.group('partition'), values['partition']})}")
    if bucket.group("bucket") != values["attachments_bucket_name"]:
        raise OutputError(f"output attachments_bucket_arn names bucket {bucket.group('bucket')!r}, "
                          f"attachments_bucket_name is {values['attachments_bucket_name']!r}")
    return values


def dns_suffix(out: Mapping[str, Any]) -> str:
    return "amazonaws.com.cn" if out["partition"] == "aws-cn" else "amazonaws.com"
