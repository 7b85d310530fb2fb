"""The attachments bucket (infra/attachments.tf), its S3 gateway endpoint
(network.tf) and the Lambda group's way to it (security.tf), read as text
(python-hcl2 lives in .venv-infra, not here): private, KMS-encrypted,
TLS-only, no versions kept, lifecycle backstops, CORS for the web client's
origin only. The policies and origins as Terraform itself evaluates them,
offline (skipped without .venv-infra). The roles' access is the renderer's:
tests/infra/test_render_config.py."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.infra import terraform_eval
from tests.infra.test_monitoring import blocks

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
ATTACHMENTS = (INFRA / "attachments.tf").read_text()
NETWORK = (INFRA / "network.tf").read_text()


def resource(kind: str, name: str = "attachments", text: str = ATTACHMENTS) -> str:
    return blocks(text, kind)[name]


def lines(body: str) -> list:
    return [line.strip() for line in body.splitlines()]


def test_public_access_is_blocked_all_four_ways_and_acls_are_off():
    body = lines(resource("aws_s3_bucket_public_access_block"))
    for setting in ("block_public_acls", "ignore_public_acls", "block_public_policy", "restrict_public_buckets"):
        assert f"{setting} = true" in [re.sub(r"\s+=\s+", " = ", line) for line in body], setting
    assert 'object_ownership = "BucketOwnerEnforced"' in resource("aws_s3_bucket_ownership_controls")
    # No ACL, no website, no public policy anywhere.
    assert not re.search(r'resource "aws_s3_bucket_(acl|website_configuration)"', ATTACHMENTS)


def test_objects_are_encrypted_with_the_stacks_key_and_a_bucket_key():
    body = resource("aws_s3_bucket_server_side_encryption_configuration")
    assert re.search(r'sse_algorithm\s+= "aws:kms"', body)
    assert re.search(r"kms_master_key_id\s+= aws_kms_key\.this\.arn", body)
    assert "bucket_key_enabled = true" in body
    # The key rotates (secrets.tf), and the output the renderer grants is that key.
    assert re.search(r"enable_key_rotation\s+= true", (INFRA / "secrets.tf").read_text())
    outputs = (INFRA / "outputs.tf").read_text()
    output = outputs[outputs.index('output "attachments_kms_key_arn"'):]
    assert "value       = aws_kms_key.this.arn" in output[:output.index("\n}\n")]


def test_versioning_is_off_and_says_why():
    body = resource("aws_s3_bucket_versioning")
    assert re.search(r'status = "Disabled"', body)
    assert "noncurrent version" in ATTACHMENTS and "deleting an object must delete it" in ATTACHMENTS.lower()
    assert "noncurrent_version" not in resource("aws_s3_bucket_lifecycle_configuration")


def test_the_bucket_policy_denies_everything_without_tls():
    body = resource("aws_s3_bucket_policy")
    assert 'Effect    = "Deny"' in body and 'Principal = "*"' in body and 'Action    = "s3:*"' in body
    assert 'Resource  = [aws_s3_bucket.attachments.arn, "${aws_s3_bucket.attachments.arn}/*"]' in body
    assert 'Condition = { Bool = { "aws:SecureTransport" = "false" } }' in body
    assert "depends_on = [aws_s3_bucket_public_access_block.attachments]" in body


def test_lifecycle_aborts_uploads_and_expires_attachments_after_retention():
    body = resource("aws_s3_bucket_lifecycle_configuration")
    abort = body[body.index('id     = "abort-incomplete-multipart-uploads"'):]
    assert "filter {}" in abort[:300] and "days_after_initiation = 1" in abort[:300]
    assert "for_each = var.retention_days > 0 ? [var.retention_days + 1] : []" in body
    expire = body[body.index('id     = "expire-attachments-after-retention"'):]
    assert "prefix = local.attachments_prefix" in expire and "days = rule.value" in expire
    assert 'attachments_prefix = "attachments/"' in ATTACHMENTS
    uploads = body[body.index('id     = "expire-uploads-after-a-day"'):]
    assert 'prefix = "${local.attachments_prefix}uploads/"' in uploads[:300] and "days = 1" in uploads[:300]


def test_cors_allows_post_and_get_from_the_web_clients_origins_only():
    body = resource("aws_s3_bucket_cors_configuration")
    assert "count = length(local.attachments_cors_origins) > 0 ? 1 : 0" in body
    assert 'allowed_methods = ["POST", "GET"]' in body
    assert "allowed_origins = local.attachments_cors_origins" in body
    assert "*" not in re.search(r"allowed_origins = (.+)", body).group(1)


def test_the_gateway_endpoint_reaches_the_attachments_only():
    body = resource("aws_vpc_endpoint", "s3", NETWORK)
    assert 'vpc_endpoint_type = "Gateway"' in body
    assert 'service_name      = "com.amazonaws.${var.region}.s3"' in body
    # The route tables of the private subnets the in-VPC Lambdas use.
    assert "route_table_ids   = aws_route_table.private[*].id" in body
    assert 'Action    = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]' in body  # PutObject: CopyObject
    assert "Resource  = local.attachments_objects_arn" in body
    assert 'Condition = { StringEquals = { "aws:PrincipalAccount" = local.account_id } }' in body
    assert 'attachments_objects_arn = "${aws_s3_bucket.attachments.arn}/${local.attachments_prefix}*"' in ATTACHMENTS
    rule = resource("aws_vpc_security_group_egress_rule", "lambda_to_s3", (INFRA / "security.tf").read_text())
    assert "prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id" in rule and "from_port         = 443" in rule


def _evaluated(tmp_path: Path, rest_api_id: str, origins: list, retention_days: int) -> dict:
    """The origins, the lifecycle rule's days and both policies, as Terraform
    evaluates attachments.tf's and network.tf's own expressions (resource
    attributes replaced by sample values)."""
    origin_lines = [re.search(rf"^  {name} += .*$", ATTACHMENTS, re.MULTILINE).group(0)
                    for name in ("api_origin", "attachments_cors_origins", "attachments_prefix")]
    lifecycle = re.search(r"for_each = (.+)$", resource("aws_s3_bucket_lifecycle_configuration"), re.MULTILINE).group(1)

    def policy(body: str) -> str:
        text = body[body.index("policy = jsonencode("):]
        return text[len("policy = "):text.index("\n  })\n") + 5]

    bucket_arn = "arn:aws:s3:::messaging-prod-attachments-5f3a9c1e"
    bucket_policy = policy(resource("aws_s3_bucket_policy")).replace("aws_s3_bucket.attachments.arn", "local.bucket_arn")
    endpoint_policy = policy(resource("aws_vpc_endpoint", "s3", NETWORK))
    main = (f'variable "rest_api_id" {{\n  default = {json.dumps(rest_api_id)}\n}}\n'
            f'variable "attachments_cors_origins" {{\n  default = {json.dumps(origins)}\n}}\n'
            f'variable "retention_days" {{\n  default = {retention_days}\n}}\n'
            'variable "region" {\n  default = "eu-west-1"\n}\n'
            'locals {\n  dns_suffix = "amazonaws.com"\n  account_id = "123456789012"\n'
            f'  bucket_arn = "{bucket_arn}"\n'
            '  attachments_objects_arn = "${local.bucket_arn}/${local.attachments_prefix}*"\n'
            + "\n".join(origin_lines) + "\n}\n"
            'output "origins" {\n  value = local.attachments_cors_origins\n}\n'
            f'output "expiry" {{\n  value = {lifecycle}\n}}\n'
            f'output "bucket_policy" {{\n  value = {bucket_policy}\n}}\n'
            f'output "endpoint_policy" {{\n  value = {endpoint_policy}\n}}\n')
    values = terraform_eval.evaluate(tmp_path, {"main.tf": main})
    values["bucket_policy"] = json.loads(values["bucket_policy"])
    values["endpoint_policy"] = json.loads(values["endpoint_policy"])
    return values


@pytest.mark.skipif(not terraform_eval.available(), reason=terraform_eval.SKIP_REASON)
def test_terraform_evaluates_the_origins_lifecycle_and_policies(tmp_path: Path):
    values = _evaluated(tmp_path / "a", "a1b2c3d4e5", ["https://chat.example.com"], 365)
    # The API's own origin (scheme and host: no stage path), then the extra ones.
    assert values["origins"] == ["https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com", "https://chat.example.com"]
    assert values["expiry"] == [366]  # a day after the purge, never before it
    bucket = "arn:aws:s3:::messaging-prod-attachments-5f3a9c1e"
    assert values["bucket_policy"] == {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket, f"{bucket}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    assert values["endpoint_policy"]["Statement"] == [{
        "Sid": "AttachmentsOnly", "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"{bucket}/attachments/*",
        "Condition": {"StringEquals": {"aws:PrincipalAccount": "123456789012"}}}]

    # Before the first chalice deploy, and with every message kept: no origin
    # (no CORS configuration at all), no expiry rule.
    values = _evaluated(tmp_path / "b", "", [], 0)
    assert values["origins"] == [] and values["expiry"] == []
