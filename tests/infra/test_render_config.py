"""The config renderer (scripts/deploy/render/, `python3 -m
scripts.deploy.render`) on the recorded `terraform output -json` sample,
rendered into a temporary copy of the project's .chalice directory."""
from __future__ import annotations

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
RENDER = [sys.executable, "-m", "scripts.deploy.render"]  # from the project root
SAMPLE = ROOT / "infra" / "testdata" / "terraform-output.sample.json"
CA = "chalicelib/certs/rds-ca-bundle.pem"

OUT = {name: entry["value"] for name, entry in json.loads(SAMPLE.read_text()).items()}
MASTER, APP_USER = OUT["db_secret_arn"], OUT["db_app_secret_arn"]
# What each in-VPC policy may read: everything that serves, the app user's
# database secret (never the master's); migrate, the two database secrets only.
SERVING_SECRETS = [APP_USER, OUT["redis_secret_arn"], OUT["auth_secret_arn"]]
MIGRATE_SECRETS = [MASTER, APP_USER]
LOG_GROUPS = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/"
FUNCTIONS = "arn:aws:lambda:us-east-1:123456789012:function:"
API_ID = "a1b2c3d4e5"  # as Chalice records it in .chalice/deployed/prod.json
WS = ["websocket_connect", "websocket_message", "websocket_disconnect"]
# Every policy file the renderer writes, by its suffix of policy-prod.
SUFFIXES = ("", "-migrate", "-api", "-websocket", "-purge", "-push")
BUCKET, BUCKET_ARN = OUT["attachments_bucket_name"], OUT["attachments_bucket_arn"]
ATTACHMENTS = f"{BUCKET_ARN}/attachments/*"  # the app's keys: attachments/uploads/… and attachments/files/…


def run(project: Path, *args: str, outputs: Any = None) -> subprocess.CompletedProcess:
    """The renderer as a user runs it: the outputs file (or stdin) and the project dir."""
    if outputs is None:
        cmd = [*RENDER, str(SAMPLE), "--project-dir", str(project), *args]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    cmd = [*RENDER, "-", "--project-dir", str(project), *args]
    return subprocess.run(cmd, cwd=ROOT, input=json.dumps(outputs), capture_output=True, text=True, timeout=60,
                          check=False)


def sample() -> Dict[str, Any]:
    return json.loads(SAMPLE.read_text())  # a fresh copy each time, free to change


def with_output(name: str, value: Any) -> Dict[str, Any]:
    """The sample with one output's value changed."""
    outputs = sample()
    outputs[name]["value"] = value
    return outputs


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's .chalice directory (config.json only: no
    deployments or generated policies), and the CA bundle path the URL names."""
    shutil.copytree(ROOT / ".chalice", tmp_path / ".chalice",
                    ignore=shutil.ignore_patterns("deployments", "deployed", "venv", "policy-*.json"))
    (tmp_path / CA).parent.mkdir(parents=True)
    (tmp_path / CA).write_text("placeholder: the real bundle is checked by scripts/check-infra.sh\n")
    return tmp_path


def config(project: Path) -> Dict[str, Any]:
    return json.loads((project / ".chalice" / "config.json").read_text())


def policy(project: Path, suffix: str = "") -> Dict[str, Any]:
    return json.loads((project / ".chalice" / f"policy-prod{suffix}.json").read_text())


def statements(project: Path, suffix: str = "") -> Dict[str, Dict[str, Any]]:
    document = policy(project, suffix)
    assert document["Version"] == "2012-10-17"
    assert all(s["Effect"] == "Allow" for s in document["Statement"])
    return {s["Sid"]: s for s in document["Statement"]}


def logs(*functions: str) -> list:
    return [arn for f in functions for arn in (f"{LOG_GROUPS}{f}", f"{LOG_GROUPS}{f}:*")]


def write_config(project: Path, cfg: Dict[str, Any]) -> None:
    (project / ".chalice" / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def scoped(cfg: Dict[str, Any], function: str):
    """How Chalice itself reads the rendered file for one function
    (chalice/config.py: _chain_lookup, the function's entry first, then the
    stage's; _chain_merge for the environment)."""
    from chalice.config import Config

    return Config(chalice_stage="prod", function_name=function, config_from_disk=cfg)


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
    ("api_throttle_rate_limit", 100), ("api_throttle_burst_limit", 200), ("api_reserved_concurrency", 50),
    ("websocket_throttle_rate_limit", 50), ("websocket_throttle_burst_limit", 100)])
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
    # Each function connects as its own database user: the app user (DML
    # only) wherever requests are served, the master user in migrate alone
    # (which creates the app user), none in push.
    app_user = {"DB_SECRET_ARN": APP_USER}
    assert prod["lambda_functions"] == {
        # 25 s: a 20 s long-poll and its last read, under API Gateway's 29 s.
        # ATTACHMENTS_BUCKET on the two functions whose roles reach it.
        "api_handler": {"reserved_concurrency": 50, "lambda_timeout": 25, "iam_policy_file": "policy-prod-api.json",
                        "environment_variables": {**app_user, "ATTACHMENTS_BUCKET": BUCKET}},
        **{h: {"iam_policy_file": "policy-prod-websocket.json", "environment_variables": app_user} for h in WS},
        "migrate": {"iam_policy_file": "policy-prod-migrate.json",
                    "environment_variables": {"DB_SECRET_ARN": MASTER, "APP_DB_SECRET_ARN": APP_USER}},
        "forget_connections": {"environment_variables": app_user},
        # Outside the VPC: it posts to the public @connections endpoint.
        "push": {"subnet_ids": [], "security_group_ids": [], "iam_policy_file": "policy-prod-push.json"},
        # A policy of its own (the attachments); 60 s: it stops itself when
        # a batch no longer fits. RETENTION_DAYS on purge only, the one
        # function that reads it.
        "purge": {"lambda_timeout": 60, "iam_policy_file": "policy-prod-purge.json",
                  "environment_variables": {**app_user, "ATTACHMENTS_BUCKET": BUCKET, "RETENTION_DAYS": "365"}},
    }
    # Not stage-wide: a function added later gets no database credentials at all.
    assert prod["environment_variables"] == {
        "DATABASE_URL": "mysql://messaging-prod.cluster-c7x2kq9wz3ab.us-east-1.rds.amazonaws.com:3306/messaging"
                        f"?tls=verify&tls_ca={CA}",
        "REDIS_URL": "rediss://master.messaging-prod.x1y2z3.use1.cache.amazonaws.com:6379/0",
        "REDIS_SECRET_ARN": OUT["redis_secret_arn"],
        "AUTH_SECRET_ARN": OUT["auth_secret_arn"],
        "AUTH_MODE": "token",
        "RATE_LIMIT_SENDS_PER_MINUTE": "120",
        "RATE_LIMIT_READS_PER_MINUTE": "600",
        "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "20",
        "RATE_LIMIT_WRITES_PER_MINUTE": "60",
        "RATE_LIMIT_TICKETS_PER_MINUTE": "30",
        "RATE_LIMIT_FRAMES_PER_MINUTE": "20",
        "LONG_POLL_MAX_SECONDS": "20",
        "PUSH_FUNCTION": "messaging-prod-push",
        "FORGET_FUNCTION": "messaging-prod-forget_connections",
        # No WEBSOCKET_URL: without the WebSocket API's id the app offers no push.
    }
    assert "no --websocket-api-id" in result.stderr
    # Lambda environment values are strings, always.
    assert all(isinstance(v, str) for v in prod["environment_variables"].values())
    assert all(isinstance(v, str) for f in prod["lambda_functions"].values()
               for v in (f.get("environment_variables") or {}).values())


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
    env = scoped(config(project), "api_handler").environment_variables
    target = parse_mysql_url(env["DATABASE_URL"])
    assert (target.host, target.port, target.database) == (OUT["db_endpoint"], 3306, "messaging")
    assert target.tls == "verify"
    assert str(target.tls_ca).endswith(CA)
    settings = Settings.from_env(env)  # no ConfigError
    assert settings.db_secret_arn == APP_USER and settings.auth_secret_arn == OUT["auth_secret_arn"]
    # Every rendered limit is one the app reads (a misspelt name would be ignored: limit off).
    assert (settings.rate_limit_sends_per_minute, settings.rate_limit_reads_per_minute,
            settings.rate_limit_writes_per_minute, settings.rate_limit_registrations_per_hour) == (120, 600, 60, 20)
    # Connect tickets per user, WebSocket frames per connection (a client pings every 4 minutes).
    assert (settings.rate_limit_tickets_per_minute, settings.rate_limit_frames_per_minute) == (30, 20)
    rendered = {k: v for k, v in env.items() if k.startswith("RATE_LIMIT_")}
    assert len(rendered) == 6 and all(getattr(settings, k.lower()) == int(v) for k, v in rendered.items()), rendered
    assert (settings.long_poll_max_seconds, settings.push_function, settings.forget_function) == (
        20, "messaging-prod-push", "messaging-prod-forget_connections")
    assert settings.websocket_url is None


def test_the_websocket_url_follows_the_api_id(project: Path):
    from chalicelib.push import management_url
    from chalicelib.settings import Settings

    result = run(project, "--websocket-api-id", API_ID)
    assert result.returncode == 0, result.stderr
    assert "no --websocket-api-id" not in result.stderr
    env = config(project)["stages"]["prod"]["environment_variables"]
    assert env["WEBSOCKET_URL"] == f"wss://{API_ID}.execute-api.us-east-1.amazonaws.com/api"
    settings = Settings.from_env(env)
    assert settings.websocket_url == env["WEBSOCKET_URL"] and settings.push_function == "messaging-prod-push"
    # Where the push function posts: the stage's @connections, the resource its policy names.
    assert management_url(settings.websocket_url) == f"https://{API_ID}.execute-api.us-east-1.amazonaws.com/api"

    # A later render without the id (the API is gone, or a stale invocation) takes push away again.
    assert run(project).returncode == 0
    assert "WEBSOCKET_URL" not in config(project)["stages"]["prod"]["environment_variables"]
    assert "ManageOwnConnections" not in statements(project, "-push")


def test_the_websocket_url_uses_the_stage_api_gateway_stage(project: Path):
    cfg = config(project)
    cfg["stages"]["prod"] = {"api_gateway_stage": "v1"}
    write_config(project, cfg)
    assert run(project, "--websocket-api-id", API_ID, outputs=with_output("api_gateway_stage", "v1")).returncode == 0
    env = config(project)["stages"]["prod"]["environment_variables"]
    assert env["WEBSOCKET_URL"] == f"wss://{API_ID}.execute-api.us-east-1.amazonaws.com/v1"
    assert statements(project, "-push")["ManageOwnConnections"]["Resource"][0].startswith(
        f"arn:aws:execute-api:us-east-1:123456789012:{API_ID}/v1/POST/@connections/")


def test_the_api_gateway_stage_is_the_one_the_alarms_watch(project: Path):
    # Unset: the output's (var.api_gateway_stage, what monitoring.tf watches).
    assert run(project, outputs=with_output("api_gateway_stage", "v2")).returncode == 0
    assert config(project)["stages"]["prod"]["api_gateway_stage"] == "v2"
    # Set to another: refused, nothing written (the alarms would watch nothing).
    before = (project / ".chalice" / "config.json").read_bytes()
    result = run(project)
    assert result.returncode == 1 and 'set api_gateway_stage = "v2" in infra/' in result.stderr
    assert (project / ".chalice" / "config.json").read_bytes() == before


def test_chalice_itself_puts_push_outside_the_vpc_and_the_rest_inside(project: Path):
    # An empty list is a value to _chain_lookup: push gets no VPC config.
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    cfg = config(project)
    push = scoped(cfg, "push")
    assert (push.subnet_ids, push.security_group_ids, push.iam_policy_file) == ([], [], "policy-prod-push.json")
    in_vpc = ["api_handler", "migrate", "forget_connections", "purge", *WS]
    for function in in_vpc:
        c = scoped(cfg, function)
        assert c.subnet_ids == OUT["subnet_ids"] and c.security_group_ids == [OUT["lambda_security_group_id"]], function
    assert scoped(cfg, "api_handler").lambda_timeout == 25 and scoped(cfg, "websocket_message").lambda_timeout == 10
    assert scoped(cfg, "purge").lambda_timeout == 60 and scoped(cfg, "forget_connections").lambda_timeout == 10
    assert {f: scoped(cfg, f).iam_policy_file for f in in_vpc} == {
        "api_handler": "policy-prod-api.json", "migrate": "policy-prod-migrate.json",
        "forget_connections": "policy-prod.json", "purge": "policy-prod-purge.json",
        **{h: "policy-prod-websocket.json" for h in WS}}
    # A function added later: the stage's default, which reaches no bucket.
    assert scoped(cfg, "added_later").iam_policy_file == "policy-prod.json"


def test_chalice_merges_each_functions_database_user_over_the_stage_environment(project: Path):
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    cfg = config(project)
    stage_env = cfg["stages"]["prod"]["environment_variables"]
    assert "DB_SECRET_ARN" not in stage_env and "APP_DB_SECRET_ARN" not in stage_env
    assert "ATTACHMENTS_BUCKET" not in stage_env
    for function in ["forget_connections", *WS]:
        assert scoped(cfg, function).environment_variables == {**stage_env, "DB_SECRET_ARN": APP_USER}, function
    assert scoped(cfg, "api_handler").environment_variables == {
        **stage_env, "DB_SECRET_ARN": APP_USER, "ATTACHMENTS_BUCKET": BUCKET}
    assert scoped(cfg, "purge").environment_variables == {
        **stage_env, "DB_SECRET_ARN": APP_USER, "ATTACHMENTS_BUCKET": BUCKET, "RETENTION_DAYS": str(OUT["retention_days"])}
    assert scoped(cfg, "migrate").environment_variables == {
        **stage_env, "DB_SECRET_ARN": MASTER, "APP_DB_SECRET_ARN": APP_USER}
    # push has no database; a function added later has no credentials either.
    assert scoped(cfg, "push").environment_variables == stage_env
    assert scoped(cfg, "added_later").environment_variables == stage_env


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
        # DB_SECRET_ARN stage-wide, as renders before the app user wrote it (the
        # master's); RETENTION_DAYS set by hand, stage-wide and per function.
        "environment_variables": {"CACHE_SIZE": "200", "AUTH_MODE": "none", "DB_SECRET_ARN": MASTER,
                                  "RETENTION_DAYS": "7", "ATTACHMENTS_BUCKET": "hand-made"},
        "lambda_functions": {
            "migrate": {"lambda_timeout": 300},  # docs/deploy.md: a longer migration
            "api_handler": {"reserved_concurrency": 5, "lambda_memory_size": 1024,
                            "environment_variables": {"CACHE_TTL_SECONDS": "60", "DB_SECRET_ARN": MASTER}},
            "push": {"environment_variables": {"APP_DB_SECRET_ARN": APP_USER, "PUSH_TIMEOUT_SECONDS": "2"}},
            "forget_connections": {"environment_variables": {"RETENTION_DAYS": "7", "ATTACHMENTS_BUCKET": "other"}},
            "purge": {"lambda_timeout": 300, "environment_variables": {"RETENTION_DAYS": "7", "CACHE_SIZE": "50"}},
        },
    }
    write_config(project, cfg)
    assert run(project, outputs=with_output("api_gateway_stage", "v1")).returncode == 0
    prod = config(project)["stages"]["prod"]
    assert prod["api_gateway_stage"] == "v1"
    assert prod["tags"] == {"team": "messaging"}
    assert prod["lambda_timeout"] == 10
    assert "reserved_concurrency" not in prod
    app_user = {"DB_SECRET_ARN": APP_USER}
    assert prod["lambda_functions"] == {
        "migrate": {"lambda_timeout": 300, "iam_policy_file": "policy-prod-migrate.json",
                    "environment_variables": {"DB_SECRET_ARN": MASTER, "APP_DB_SECRET_ARN": APP_USER}},
        "api_handler": {"reserved_concurrency": 50, "lambda_memory_size": 1024, "lambda_timeout": 25,
                        "iam_policy_file": "policy-prod-api.json",
                        "environment_variables": {"CACHE_TTL_SECONDS": "60", "DB_SECRET_ARN": APP_USER,
                                                  "ATTACHMENTS_BUCKET": BUCKET}},
        **{h: {"iam_policy_file": "policy-prod-websocket.json", "environment_variables": app_user} for h in WS},
        "forget_connections": {"environment_variables": app_user},
        "push": {"environment_variables": {"PUSH_TIMEOUT_SECONDS": "2"}, "subnet_ids": [], "security_group_ids": [],
                 "iam_policy_file": "policy-prod-push.json"},
        # The timeout, the policy, the bucket and the retention are managed;
        # the hand-made variable stays.
        "purge": {"lambda_timeout": 60, "iam_policy_file": "policy-prod-purge.json",
                  "environment_variables": {"CACHE_SIZE": "50", "DB_SECRET_ARN": APP_USER,
                                            "ATTACHMENTS_BUCKET": BUCKET, "RETENTION_DAYS": "365"}},
    }
    assert prod["environment_variables"]["CACHE_SIZE"] == "200"
    assert prod["environment_variables"]["AUTH_MODE"] == "token"
    assert "DB_SECRET_ARN" not in prod["environment_variables"]
    assert "RETENTION_DAYS" not in prod["environment_variables"]
    assert "ATTACHMENTS_BUCKET" not in prod["environment_variables"]


def test_the_reserved_concurrency_follows_the_output(project: Path):
    # A whole JSON number in float form.
    assert run(project, outputs=with_output("api_reserved_concurrency", 20.0)).returncode == 0
    assert config(project)["stages"]["prod"]["lambda_functions"]["api_handler"]["reserved_concurrency"] == 20


def test_retention_reaches_purge_alone_and_zero_keeps_everything(project: Path):
    from chalicelib.settings import Settings

    # The default: no RETENTION_DAYS anywhere, which the app reads as "keep every message".
    assert variable_default("retention_days") == 0
    assert run(project, outputs=with_output("retention_days", 0)).returncode == 0
    cfg = config(project)
    for function in ["api_handler", "migrate", "forget_connections", "purge", "push", *WS]:
        env = scoped(cfg, function).environment_variables
        assert "RETENTION_DAYS" not in env, function
        assert Settings.from_env(env).retention_days is None, function

    # The sample's 365 (a whole number in float form too): on purge only, as the app reads it.
    assert OUT["retention_days"] == 365
    assert run(project, outputs=with_output("retention_days", 365.0)).returncode == 0
    cfg = config(project)
    assert Settings.from_env(scoped(cfg, "purge").environment_variables).retention_days == 365
    for function in ["api_handler", "migrate", "forget_connections", "push", *WS]:
        assert "RETENTION_DAYS" not in scoped(cfg, function).environment_variables, function

    # Back to 0: gone again, not left over from the render before.
    assert run(project, outputs=with_output("retention_days", 0)).returncode == 0
    assert "RETENTION_DAYS" not in scoped(config(project), "purge").environment_variables


def test_the_retention_bounds_are_the_apps():
    # What var.retention_days validates and the renderer accepts (1..36500,
    # 0 for unset) is what chalicelib/settings.py accepts.
    from chalicelib.settings import ConfigError, Settings

    assert Settings.from_env({"RETENTION_DAYS": "36500"}).retention_days == 36500
    assert Settings.from_env({"RETENTION_DAYS": "1"}).retention_days == 1
    for bad in ("36501", "0.5", "-1"):
        with pytest.raises(ConfigError):
            Settings.from_env({"RETENTION_DAYS": bad})
    variables = (ROOT / "infra" / "variables.tf").read_text()
    block = variables[variables.index('variable "retention_days"'):]
    assert ("condition     = floor(var.retention_days) == var.retention_days && (var.retention_days == 0 || "
            "(var.retention_days >= 1 && var.retention_days <= 36500))") in block[:block.index("\n}\n")]


def test_the_old_flag_is_gone(project: Path):
    # One mechanism: the Terraform output. A stale invocation must not pass silently.
    result = run(project, "--reserved-concurrency", "50")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


# --------------------------------------------------------------------------- the policy


def _in_vpc_statements_are_least_privilege(found: Dict[str, Dict[str, Any]], groups: list, secrets: list) -> None:
    logs_ = found["WriteOwnLogs"]
    assert logs_["Action"] == ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    # Exactly the groups infra/lambda.tf creates for these functions, each with its streams.
    assert logs_["Resource"] == logs(*groups)

    eni = found["VpcNetworkInterfaces"]
    assert set(eni["Action"]) >= {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                                  "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                                  "ec2:UnassignPrivateIpAddresses"}
    assert all(a.startswith("ec2:") and ("NetworkInterface" in a or "PrivateIp" in a or a == "ec2:DescribeSubnets")
               for a in eni["Action"])
    assert eni["Resource"] == "*"

    assert found["ReadAppSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert found["ReadAppSecrets"]["Resource"] == secrets

    kms = found["DecryptAppSecretsViaSecretsManager"]
    assert kms["Action"] == "kms:Decrypt"
    assert kms["Resource"] == OUT["kms_key_arn"]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


IN_VPC = {"WriteOwnLogs", "VpcNetworkInterfaces", "ReadAppSecrets", "DecryptAppSecretsViaSecretsManager"}


def test_the_default_policy_is_least_privilege(project: Path):
    # The stage's iam_policy_file: forget_connections and any function added
    # later (in the VPC, no push, the app user's database secret only, no bucket).
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    found = statements(project)
    assert set(found) == IN_VPC
    _in_vpc_statements_are_least_privilege(found, ["messaging-prod-forget_connections"], SERVING_SECRETS)


def test_only_migrate_reads_the_master_secret(project: Path):
    # It connects as the master user and creates the app user with the
    # password from the app user's secret; it needs neither Redis nor the
    # signing secrets.
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    found = statements(project, "-migrate")
    assert set(found) == IN_VPC
    assert OUT["migrate_log_group_name"] == "/aws/lambda/messaging-prod-migrate"
    _in_vpc_statements_are_least_privilege(found, ["messaging-prod-migrate"], MIGRATE_SECRETS)
    readers = [suffix for suffix in SUFFIXES for s in statements(project, suffix).values() if MASTER in json.dumps(s)]
    assert readers == ["-migrate"]


def test_the_api_policy_adds_invoking_push_and_the_attachments_only(project: Path):
    # The API handler hands its posts to push and signs the attachments' URLs.
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    found = statements(project, "-api")
    assert set(found) == IN_VPC | {"InvokePush", "Attachments", "AttachmentsKeyViaS3"}
    assert OUT["lambda_log_group_name"] == "/aws/lambda/messaging-prod"
    _in_vpc_statements_are_least_privilege(found, ["messaging-prod"], SERVING_SECRETS)
    assert found["InvokePush"]["Action"] == "lambda:InvokeFunction"
    assert found["InvokePush"]["Resource"] == [f"{FUNCTIONS}messaging-prod-push", f"{FUNCTIONS}messaging-prod-push:*"]
    assert OUT["push_function_name"] == "messaging-prod-push"  # what the Lambda endpoint's policy allows


def test_the_websocket_policy_adds_invoking_push_only(project: Path):
    # The WebSocket handlers hand their posts (pongs) to push; no bucket.
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    found = statements(project, "-websocket")
    assert set(found) == IN_VPC | {"InvokePush"}
    _in_vpc_statements_are_least_privilege(found, [f"messaging-prod-{h}" for h in WS], SERVING_SECRETS)
    assert found["InvokePush"] == statements(project, "-api")["InvokePush"]


def test_the_purge_policy_adds_checking_and_deleting_attachments_only(project: Path):
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    found = statements(project, "-purge")
    # HeadObject (s3:GetObject) and DeleteObject; no key: it never reads or
    # writes an object's content.
    assert set(found) == IN_VPC | {"Attachments"}
    _in_vpc_statements_are_least_privilege(found, ["messaging-prod-purge"], SERVING_SECRETS)
    assert found["Attachments"] == {"Sid": "Attachments", "Effect": "Allow",
                                    "Action": ["s3:GetObject", "s3:DeleteObject"], "Resource": ATTACHMENTS}


def test_the_api_may_put_get_and_delete_attachments_and_use_their_key_through_s3_only(project: Path):
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    found = statements(project, "-api")
    # A presigned POST is accepted only if its signer may PutObject (and get
    # a data key for SSE-KMS); a presigned GET only if it may GetObject (and
    # Decrypt). Objects under attachments/ only: never the bucket itself
    # (no ListBucket, no configuration), never another key prefix.
    assert found["Attachments"] == {"Sid": "Attachments", "Effect": "Allow",
                                    "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                                    "Resource": ATTACHMENTS}
    assert ATTACHMENTS == "arn:aws:s3:::messaging-prod-attachments-5f3a9c1e/attachments/*"
    key = found["AttachmentsKeyViaS3"]
    assert key["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert key["Resource"] == OUT["attachments_kms_key_arn"]
    # Only as S3 uses it, and only for this bucket's objects (the encryption
    # context is the bucket's ARN with a bucket key, the object's without).
    assert key["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [BUCKET_ARN, ATTACHMENTS]}}


def test_only_the_api_and_purge_reach_the_attachments(project: Path):
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    reach = {suffix: [s for s in statements(project, suffix).values()
                      if BUCKET in json.dumps(s) or any(str(a).startswith("s3:") for a in
                                                        (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
             for suffix in SUFFIXES}
    assert {suffix for suffix, found in reach.items() if found} == {"-api", "-purge"}
    # Every S3 action in any policy is one of the three object actions, on the prefix.
    for suffix in ("-api", "-purge"):
        s3 = [s for s in reach[suffix] if s["Sid"] == "Attachments"]
        assert len(s3) == 1 and s3[0]["Resource"] == ATTACHMENTS
        assert set(s3[0]["Action"]) <= {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
    # The key through S3: the API alone (purge's HeadObject and DeleteObject need none).
    key = [(suffix, s["Sid"]) for suffix in SUFFIXES for s in statements(project, suffix).values()
           if "s3." in json.dumps(s.get("Condition", {}))]
    assert key == [("-api", "AttachmentsKeyViaS3")]


def test_the_bucket_reaches_the_api_and_purge_alone(project: Path):
    assert run(project).returncode == 0
    cfg = config(project)
    for function in ["api_handler", "migrate", "forget_connections", "purge", "push", "added_later", *WS]:
        wanted = BUCKET if function in ("api_handler", "purge") else None
        assert scoped(cfg, function).environment_variables.get("ATTACHMENTS_BUCKET") == wanted, function
    # Another bucket after a re-create: the new name everywhere it is set.
    outputs = with_output("attachments_bucket_name", "messaging-prod-attachments-0badc0de")
    outputs["attachments_bucket_arn"]["value"] = "arn:aws:s3:::messaging-prod-attachments-0badc0de"
    assert run(project, outputs=outputs).returncode == 0
    cfg = config(project)
    assert scoped(cfg, "purge").environment_variables["ATTACHMENTS_BUCKET"] == "messaging-prod-attachments-0badc0de"
    assert statements(project, "-api")["Attachments"]["Resource"] == (
        "arn:aws:s3:::messaging-prod-attachments-0badc0de/attachments/*")


def test_the_push_policy_posts_to_this_api_and_invokes_forget_only(project: Path):
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    found = statements(project, "-push")
    # Outside the VPC: no network interfaces, and no secrets (push reads none).
    assert set(found) == {"WriteOwnLogs", "ManageOwnConnections", "InvokeForgetConnections"}
    assert found["WriteOwnLogs"]["Resource"] == logs("messaging-prod-push")
    assert found["ManageOwnConnections"]["Action"] == "execute-api:ManageConnections"
    api = f"arn:aws:execute-api:us-east-1:123456789012:{API_ID}/api"
    assert found["ManageOwnConnections"]["Resource"] == [
        f"{api}/POST/@connections/*", f"{api}/GET/@connections/*", f"{api}/DELETE/@connections/*"]
    assert found["InvokeForgetConnections"]["Resource"] == [
        f"{FUNCTIONS}messaging-prod-forget_connections", f"{FUNCTIONS}messaging-prod-forget_connections:*"]


def test_before_the_first_deploy_push_may_post_nowhere(project: Path):
    # The API id is known only after `chalice deploy`: no guessed wildcard
    # over every API of the account, nothing at all until then.
    assert run(project).returncode == 0
    assert set(statements(project, "-push")) == {"WriteOwnLogs", "InvokeForgetConnections"}


def test_no_wildcard_resource_or_action_outside_the_eni_statement(project: Path):
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    # A wildcard only for the streams of one log group, the qualifiers of one
    # function, or the connections of this API's stage.
    allowed = re.compile(rf"^({re.escape(LOG_GROUPS)}messaging-prod(-[a-z_]+)?:\*"
                         rf"|{re.escape(FUNCTIONS)}messaging-prod-(push|forget_connections):\*"
                         rf"|{re.escape(ATTACHMENTS)}"
                         rf"|arn:aws:execute-api:us-east-1:123456789012:{API_ID}/api/(POST|GET|DELETE)/@connections/\*)$")
    secret_arns = []
    for suffix in SUFFIXES:
        for statement in policy(project, suffix)["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in a for a in actions), statement["Sid"]
            secret_arns += [arn for arn in resources if ":secretsmanager:" in arn]
            if statement["Sid"] == "VpcNetworkInterfaces":
                continue
            assert "*" not in resources, statement["Sid"]
            for arn in resources:
                assert "*" not in arn or allowed.match(arn), arn
    # The five in-VPC policies, none in push's.
    assert sorted(secret_arns) == sorted(SERVING_SECRETS * 4 + MIGRATE_SECRETS)


def test_every_function_has_a_log_group_and_a_policy_naming_it(project: Path):
    # The log groups infra/lambda.tf makes (all three outputs) are exactly
    # the groups the six policies grant, one policy per function.
    assert run(project, "--websocket-api-id", API_ID).returncode == 0
    made = {OUT["lambda_log_group_name"], OUT["migrate_log_group_name"], *OUT["function_log_group_names"].values()}
    granted = [arn.split(":log-group:")[1] for suffix in SUFFIXES
               for arn in statements(project, suffix)["WriteOwnLogs"]["Resource"] if not arn.endswith(":*")]
    assert sorted(granted) == sorted(made) and len(made) == 8


# --------------------------------------------------------------------------- idempotence


def test_running_twice_changes_nothing(project: Path):
    first = run(project)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("wrote ") == 7
    files = [project / ".chalice" / name for name in ("config.json", *(f"policy-prod{s}.json" for s in SUFFIXES))]
    snapshot = [(p.read_bytes(), p.stat().st_mtime_ns) for p in files]

    second = run(project, outputs=sample())  # the same outputs, this time on stdin
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("unchanged ") == 7
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in files] == snapshot
    assert sorted(p.name for p in (project / ".chalice").iterdir()) == sorted(p.name for p in files)

    # Learning the WebSocket API's id changes config.json and the push policy only.
    third = run(project, "--websocket-api-id", API_ID)
    assert third.returncode == 0, third.stderr
    assert sorted(line.split("/")[-1] for line in third.stdout.splitlines() if line.startswith("wrote ")) == [
        "config.json", "policy-prod-push.json"]


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
    # The API must never connect as the master user.
    (lambda o: o["db_app_secret_arn"].update(value=o["db_secret_arn"]["value"]), "must be distinct"),
    (lambda o: o.pop("db_app_secret_arn"), "missing outputs: db_app_secret_arn"),
    (lambda o: o["db_app_secret_arn"].update(value=o["db_app_secret_arn"]["value"].replace("us-east-1", "eu-west-1")),
     "disagree on the region"),
    (lambda o: o.pop("api_gateway_stage"), "missing outputs: api_gateway_stage"),
    (lambda o: o["api_gateway_stage"].update(value="api/v1"), "unexpected form"),
    (lambda o: o.pop("api_reserved_concurrency"), "missing outputs: api_reserved_concurrency"),
    (lambda o: o["api_reserved_concurrency"].update(value=0), "whole number from 1 to 1000"),
    (lambda o: o["api_reserved_concurrency"].update(value=2.5), "whole number from 1 to 1000"),
    (lambda o: o["api_reserved_concurrency"].update(value=True), "whole number from 1 to 1000"),
    (lambda o: o["api_reserved_concurrency"].update(value="50"), "whole number from 1 to 1000"),
    (lambda o: o["api_throttle_rate_limit"].update(value=0), "requests per second"),
    (lambda o: o["api_throttle_rate_limit"].update(value=10_001), "requests per second"),
    (lambda o: o["api_throttle_burst_limit"].update(value=5_001), "whole number from 1 to 5000"),
    (lambda o: o.pop("websocket_throttle_rate_limit"), "missing outputs: websocket_throttle_rate_limit"),
    (lambda o: o["websocket_throttle_rate_limit"].update(value=0), "requests per second"),
    (lambda o: o["websocket_throttle_burst_limit"].update(value=0), "whole number from 1 to 5000"),
    # name_prefix differs from app_name: Terraform's log groups are not the functions'.
    (lambda o: o["migrate_log_group_name"].update(value="/aws/lambda/chat-prod-migrate"), "name_prefix in infra/"),
    (lambda o: o["lambda_log_group_name"].update(value="/aws/lambda/chat-prod"), "name_prefix in infra/"),
    (lambda o: o["push_function_name"].update(value="chat-prod-push"), "name_prefix in infra/"),
    # A function whose log group Terraform does not make (or one it makes for nothing).
    (lambda o: o["function_log_group_names"]["value"].pop("websocket_message"), "a group for every function"),
    (lambda o: o["function_log_group_names"]["value"].pop("purge"), "a group for every function"),
    (lambda o: o["function_log_group_names"]["value"].update(extra="/aws/lambda/messaging-prod-extra"),
     "a group for every function"),
    (lambda o: o["function_log_group_names"].update(value=["/aws/lambda/messaging-prod-push"]),
     "must map function names to log groups"),
    (lambda o: o.pop("push_function_name"), "missing outputs: push_function_name"),
    (lambda o: o.pop("retention_days"), "missing outputs: retention_days"),
    (lambda o: o["retention_days"].update(value=-1), "whole number from 0 to 36500"),
    (lambda o: o["retention_days"].update(value=36_501), "whole number from 0 to 36500"),
    (lambda o: o["retention_days"].update(value=2.5), "whole number from 0 to 36500"),
    (lambda o: o["retention_days"].update(value="30"), "whole number from 0 to 36500"),
    (lambda o: o["retention_days"].update(value=True), "whole number from 0 to 36500"),
    (lambda o: o.pop("attachments_bucket_name"), "missing outputs: attachments_bucket_name"),
    (lambda o: o.pop("attachments_bucket_arn"), "missing outputs: attachments_bucket_arn"),
    (lambda o: o.pop("attachments_kms_key_arn"), "missing outputs: attachments_kms_key_arn"),
    (lambda o: o["attachments_bucket_name"].update(value="Messaging_Attachments"), "unexpected form"),
    (lambda o: o["attachments_bucket_arn"].update(value="arn:aws:s3:::messaging-prod-attachments-5f3a9c1e/*"),
     "unexpected form"),
    (lambda o: o["attachments_bucket_arn"].update(value="arn:aws:s3:::another-bucket"), "names bucket 'another-bucket'"),
    (lambda o: o["attachments_bucket_arn"].update(value="arn:aws-cn:s3:::messaging-prod-attachments-5f3a9c1e"),
     "disagree on the partition"),
    (lambda o: o["attachments_kms_key_arn"].update(value="arn:aws:s3:::messaging-prod-attachments-5f3a9c1e"),
     "unexpected form"),
    (lambda o: o["attachments_kms_key_arn"].update(
        value=o["kms_key_arn"]["value"].replace("123456789012", "210987654321")), "disagree on the account"),
])
def test_bad_outputs_are_refused_and_nothing_is_written(project: Path, change, message):
    outputs = sample()
    change(outputs)
    before = (project / ".chalice" / "config.json").read_bytes()
    result = run(project, outputs=outputs)
    assert result.returncode == 1
    assert message in result.stderr
    assert (project / ".chalice" / "config.json").read_bytes() == before
    assert not list((project / ".chalice").glob("policy-*.json"))


@pytest.mark.parametrize("api_id", ["", "A1B2C3D4E5", "a1b2/c3", "a" * 33])
def test_a_bad_websocket_api_id_is_refused(project: Path, api_id):
    result = run(project, "--websocket-api-id", api_id)
    assert result.returncode == 1 and "not an API Gateway id" in result.stderr
    assert not list((project / ".chalice").glob("policy-*.json"))


def test_a_missing_ca_bundle_is_refused(project: Path):
    (project / CA).unlink()
    result = run(project)
    assert result.returncode == 1 and "could not verify the database certificate" in result.stderr
