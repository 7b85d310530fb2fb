"""scripts/render_chalice_config.py on the recorded `terraform output -json`
sample, rendered into a temporary copy of the project's .chalice directory."""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "render_chalice_config.py"
SAMPLE = ROOT / "infra" / "testdata" / "terraform-output.sample.json"
CA = "chalicelib/certs/rds-ca-bundle.pem"

OUT = {name: entry["value"] for name, entry in json.loads(SAMPLE.read_text()).items()}
SECRETS = [OUT["db_secret_arn"], OUT["redis_secret_arn"], OUT["auth_secret_arn"]]
LOG_GROUPS = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/"


def run(project: Path, *args: str, outputs: Any = None) -> subprocess.CompletedProcess:
    """The script as a user runs it: the outputs file (or stdin) and the project dir."""
    if outputs is None:
        cmd = [sys.executable, str(SCRIPT), str(SAMPLE), "--project-dir", str(project), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    cmd = [sys.executable, str(SCRIPT), "-", "--project-dir", str(project), *args]
    return subprocess.run(cmd, input=json.dumps(outputs), capture_output=True, text=True, timeout=60, check=False)


def sample() -> Dict[str, Any]:
    return json.loads(SAMPLE.read_text())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's .chalice directory (config.json only: no
    deployments or generated policies), and the CA bundle path the URL names."""
    shutil.copytree(ROOT / ".chalice", tmp_path / ".chalice",
                    ignore=shutil.ignore_patterns("deployments", "venv", "policy-*.json"))
    (tmp_path / CA).parent.mkdir(parents=True)
    (tmp_path / CA).write_text("placeholder: the real bundle is checked by scripts/check-infra.sh\n")
    return tmp_path


def config(project: Path) -> Dict[str, Any]:
    return json.loads((project / ".chalice" / "config.json").read_text())


def policy(project: Path) -> Dict[str, Any]:
    return json.loads((project / ".chalice" / "policy-prod.json").read_text())


# --------------------------------------------------------------------------- the sample itself


def test_sample_has_exactly_the_outputs_terraform_declares():
    declared = set(re.findall(r'^output "([a-z_]+)"', (ROOT / "infra" / "outputs.tf").read_text(), re.MULTILINE))
    assert declared == set(sample())
    for name, entry in sample().items():
        assert set(entry) == {"sensitive", "type", "value"}, name
        assert entry["sensitive"] is False, name


def variable_default(name: str) -> Any:
    variables = (ROOT / "infra" / "variables.tf").read_text()
    block = variables[variables.index(f'variable "{name}"'):]
    return json.loads(re.search(r"^  default\s*=\s*(.+)$", block[:block.index("\n}\n")], re.MULTILINE).group(1))


@pytest.mark.parametrize("name, value", [
    ("api_throttle_rate_limit", 100), ("api_throttle_burst_limit", 200), ("api_reserved_concurrency", 50)])
def test_the_sample_limits_are_the_variable_defaults(name, value):
    # The sample stands for a stage deployed with the defaults, the numbers
    # docs/deploy.md ("What protects the database") works with.
    assert OUT[name] == variable_default(name) == value


# --------------------------------------------------------------------------- the prod stage


def test_prod_stage_has_every_field(project: Path):
    result = run(project)
    assert result.returncode == 0, result.stderr

    prod = config(project)["stages"]["prod"]
    assert prod["subnet_ids"] == ["subnet-0a3e5c7b9d1f24680", "subnet-0b4f6d8a0c2e35791"]
    assert prod["security_group_ids"] == ["sg-0c4f8a2e6b1d3f579"]
    assert prod["autogen_policy"] is False
    assert prod["iam_policy_file"] == "policy-prod.json"
    assert prod["lambda_memory_size"] == 512
    assert prod["lambda_timeout"] == 10
    assert prod["api_gateway_stage"] == "api"
    # Reserved for the API handler only (Chalice's per-function config), from
    # the output; never stage-wide, which would reserve as much for migrate.
    assert "reserved_concurrency" not in prod
    assert prod["lambda_functions"] == {"api_handler": {"reserved_concurrency": 50}}
    assert prod["environment_variables"] == {
        "DATABASE_URL": "mysql://messaging-prod.cluster-c7x2kq9wz3ab.us-east-1.rds.amazonaws.com:3306/messaging"
                        f"?tls=verify&tls_ca={CA}",
        "DB_SECRET_ARN": OUT["db_secret_arn"],
        "REDIS_URL": "rediss://master.messaging-prod.x1y2z3.use1.cache.amazonaws.com:6379/0",
        "REDIS_SECRET_ARN": OUT["redis_secret_arn"],
        "AUTH_SECRET_ARN": OUT["auth_secret_arn"],
        "AUTH_MODE": "token",
        "RATE_LIMIT_SENDS_PER_MINUTE": "120",
        "RATE_LIMIT_READS_PER_MINUTE": "600",
        "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "20",
        "RATE_LIMIT_WRITES_PER_MINUTE": "60",
    }
    # Lambda environment values are strings, always.
    assert all(isinstance(v, str) for v in prod["environment_variables"].values())


def test_urls_carry_no_credentials_and_demand_tls(project: Path):
    assert run(project).returncode == 0
    env = config(project)["stages"]["prod"]["environment_variables"]
    db, redis = urlsplit(env["DATABASE_URL"]), urlsplit(env["REDIS_URL"])
    assert (db.scheme, db.username, db.password) == ("mysql", None, None)
    assert parse_qs(db.query) == {"tls": ["verify"], "tls_ca": [CA]}
    assert (redis.scheme, redis.username, redis.password) == ("rediss", None, None)


def test_the_app_reads_the_rendered_database_url_as_intended(project: Path):
    from chalicelib.dialects import parse_mysql_url
    from chalicelib.settings import Settings

    assert run(project).returncode == 0
    env = config(project)["stages"]["prod"]["environment_variables"]
    target = parse_mysql_url(env["DATABASE_URL"])
    assert (target.host, target.port, target.database) == (OUT["db_endpoint"], 3306, "messaging")
    assert target.tls == "verify"
    assert str(target.tls_ca).endswith(CA)
    settings = Settings.from_env(env)  # no ConfigError
    assert settings.db_secret_arn == OUT["db_secret_arn"] and settings.auth_secret_arn == OUT["auth_secret_arn"]
    # Every rendered limit is one the app reads (a misspelt name would be ignored: limit off).
    assert (settings.rate_limit_sends_per_minute, settings.rate_limit_reads_per_minute,
            settings.rate_limit_writes_per_minute, settings.rate_limit_registrations_per_hour) == (120, 600, 60, 20)


def test_dev_stage_and_top_level_keys_are_preserved(project: Path):
    before = config(project)
    assert run(project).returncode == 0
    after = config(project)
    assert after["stages"]["dev"] == before["stages"]["dev"]
    assert {k: v for k, v in after.items() if k != "stages"} == {k: v for k, v in before.items() if k != "stages"}
    assert set(after["stages"]) == set(before["stages"]) | {"prod"}


def test_hand_made_prod_settings_survive_and_managed_ones_are_replaced(project: Path):
    cfg = config(project)
    cfg["stages"]["prod"] = {
        "api_gateway_stage": "v1",
        "lambda_timeout": 3,
        "reserved_concurrency": 7,  # what the old --reserved-concurrency wrote: stage-wide
        "tags": {"team": "messaging"},
        "environment_variables": {"CACHE_SIZE": "200", "AUTH_MODE": "none"},
        "lambda_functions": {
            "migrate": {"lambda_timeout": 300},  # docs/deploy.md: a longer migration
            "api_handler": {"reserved_concurrency": 5, "lambda_memory_size": 1024},
        },
    }
    (project / ".chalice" / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    assert run(project).returncode == 0
    prod = config(project)["stages"]["prod"]
    assert prod["api_gateway_stage"] == "v1"
    assert prod["tags"] == {"team": "messaging"}
    assert prod["lambda_timeout"] == 10
    assert "reserved_concurrency" not in prod
    assert prod["lambda_functions"] == {
        "migrate": {"lambda_timeout": 300},
        "api_handler": {"reserved_concurrency": 50, "lambda_memory_size": 1024},
    }
    assert prod["environment_variables"]["CACHE_SIZE"] == "200"
    assert prod["environment_variables"]["AUTH_MODE"] == "token"


def test_the_reserved_concurrency_follows_the_output(project: Path):
    outputs = copy.deepcopy(sample())
    outputs["api_reserved_concurrency"]["value"] = 20.0  # a whole JSON number in float form
    assert run(project, outputs=outputs).returncode == 0
    assert config(project)["stages"]["prod"]["lambda_functions"]["api_handler"] == {"reserved_concurrency": 20}


def test_the_old_flag_is_gone(project: Path):
    # One mechanism: the Terraform output. A stale invocation must not pass silently.
    result = run(project, "--reserved-concurrency", "50")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


# --------------------------------------------------------------------------- the policy


def test_policy_is_least_privilege(project: Path):
    assert run(project).returncode == 0
    statements = {s["Sid"]: s for s in policy(project)["Statement"]}
    assert policy(project)["Version"] == "2012-10-17"
    assert set(statements) == {"WriteOwnLogs", "VpcNetworkInterfaces", "ReadAppSecrets",
                               "DecryptAppSecretsViaSecretsManager"}
    assert all(s["Effect"] == "Allow" for s in statements.values())

    logs = statements["WriteOwnLogs"]
    assert logs["Action"] == ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    # Exactly the two log groups infra/lambda.tf creates (outputs lambda_log_group_name,
    # migrate_log_group_name), each with its streams; no other group of the account.
    api, migrate = (LOG_GROUPS + OUT["lambda_log_group_name"][len("/aws/lambda/"):],
                    LOG_GROUPS + OUT["migrate_log_group_name"][len("/aws/lambda/"):])
    assert (api, migrate) == (f"{LOG_GROUPS}messaging-prod", f"{LOG_GROUPS}messaging-prod-migrate")
    assert logs["Resource"] == [api, f"{api}:*", migrate, f"{migrate}:*"]

    eni = statements["VpcNetworkInterfaces"]
    assert set(eni["Action"]) >= {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                                  "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                                  "ec2:UnassignPrivateIpAddresses"}
    assert all(a.startswith("ec2:") and ("NetworkInterface" in a or "PrivateIp" in a or a == "ec2:DescribeSubnets")
               for a in eni["Action"])
    assert eni["Resource"] == "*"

    secrets = statements["ReadAppSecrets"]
    assert secrets["Action"] == "secretsmanager:GetSecretValue"
    assert sorted(secrets["Resource"]) == sorted(SECRETS)

    kms = statements["DecryptAppSecretsViaSecretsManager"]
    assert kms["Action"] == "kms:Decrypt"
    assert kms["Resource"] == OUT["kms_key_arn"]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


def test_no_wildcard_resource_or_action_outside_the_eni_statement(project: Path):
    assert run(project).returncode == 0
    for statement in policy(project)["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), statement["Sid"]
        if statement["Sid"] == "VpcNetworkInterfaces":
            continue
        assert "*" not in resources, statement["Sid"]
        for arn in resources:  # a wildcard only for the streams of one of the two log groups
            assert "*" not in arn or arn in (f"{LOG_GROUPS}messaging-prod:*", f"{LOG_GROUPS}messaging-prod-migrate:*"), arn
    secret_arns = [arn for s in policy(project)["Statement"]
                   for arn in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
                   if ":secretsmanager:" in arn]
    assert sorted(secret_arns) == sorted(SECRETS)


# --------------------------------------------------------------------------- idempotence


def test_running_twice_changes_nothing(project: Path):
    first = run(project)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("wrote ") == 2
    files = [project / ".chalice" / "config.json", project / ".chalice" / "policy-prod.json"]
    snapshot = [(p.read_bytes(), p.stat().st_mtime_ns) for p in files]

    second = run(project, outputs=sample())  # the same outputs, this time on stdin
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("unchanged ") == 2
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in files] == snapshot
    assert sorted(p.name for p in (project / ".chalice").iterdir()) == ["config.json", "policy-prod.json"]


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("change, message", [
    (lambda o: o.pop("db_secret_arn"), "missing outputs: db_secret_arn"),
    (lambda o: o["stage"].update(value="staging"), "refusing to render"),
    (lambda o: o["subnet_ids"].update(value=["subnet-0a3e5c7b9d1f24680"]), "at least two distinct subnets"),
    (lambda o: o["lambda_security_group_id"].update(value="0.0.0.0/0"), "unexpected form"),
    (lambda o: o["redis_port"].update(value="6379"), "must be a port number"),
    (lambda o: o["auth_secret_arn"].update(value=o["auth_secret_arn"]["value"].replace("123456789012", "210987654321")),
     "disagree on the account"),
    (lambda o: o["region"].update(value="eu-west-1"), "output region is eu-west-1"),
    (lambda o: o["redis_secret_arn"].update(value=o["auth_secret_arn"]["value"]), "must be distinct"),
    (lambda o: o.pop("api_reserved_concurrency"), "missing outputs: api_reserved_concurrency"),
    (lambda o: o["api_reserved_concurrency"].update(value=0), "whole number from 1 to 1000"),
    (lambda o: o["api_reserved_concurrency"].update(value=2.5), "whole number from 1 to 1000"),
    (lambda o: o["api_reserved_concurrency"].update(value=True), "whole number from 1 to 1000"),
    (lambda o: o["api_reserved_concurrency"].update(value="50"), "whole number from 1 to 1000"),
    (lambda o: o["api_throttle_rate_limit"].update(value=0), "requests per second"),
    (lambda o: o["api_throttle_rate_limit"].update(value=10_001), "requests per second"),
    (lambda o: o["api_throttle_burst_limit"].update(value=5_001), "whole number from 1 to 5000"),
    # name_prefix differs from app_name: Terraform's log groups are not the functions'.
    (lambda o: o["migrate_log_group_name"].update(value="/aws/lambda/chat-prod-migrate"), "name_prefix in infra/"),
    (lambda o: o["lambda_log_group_name"].update(value="/aws/lambda/chat-prod"), "name_prefix in infra/"),
])
def test_bad_outputs_are_refused_and_nothing_is_written(project: Path, change, message):
    outputs = copy.deepcopy(sample())
    change(outputs)
    before = (project / ".chalice" / "config.json").read_bytes()
    result = run(project, outputs=outputs)
    assert result.returncode == 1
    assert message in result.stderr
    assert (project / ".chalice" / "config.json").read_bytes() == before
    assert not (project / ".chalice" / "policy-prod.json").exists()


def test_a_missing_ca_bundle_is_refused(project: Path):
    (project / CA).unlink()
    result = run(project)
    assert result.returncode == 1 and "could not verify the database certificate" in result.stderr
