"""infra/monitoring.tf read as text (python-hcl2 lives in .venv-infra, not
here): every alarm notifies the topic when it fires and when it clears, says
what it means, chooses how missing data counts, and takes its threshold from
a variable; the KMS key lets CloudWatch publish to exactly that topic. The
dashboard (templates/dashboard.json.tftpl) rendered by Terraform itself,
offline (skipped without .venv-infra): every function, the grid, the
thresholds."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MONITORING = (INFRA / "monitoring.tf").read_text()
LOCALS = (INFRA / "locals.tf").read_text()
# What local.functions in infra/locals.tf decodes.
FUNCTIONS = json.loads((ROOT / "chalicelib" / "functions.json").read_text())["functions"]


def blocks(text: str, kind: str) -> Dict[str, str]:
    """name -> body of each `resource "<kind>" "<name>" { ... }` (braces counted)."""
    found = {}
    for match in re.finditer(rf'^resource "{kind}" "([a-z0-9_]+)" \{{', text, re.MULTILINE):
        depth, at = 1, match.end()
        while depth:
            char = text[at]
            depth += {"{": 1, "}": -1}.get(char, 0)
            at += 1
        found[match.group(1)] = text[match.end():at - 1]
    return found


ALARMS = blocks(MONITORING, "aws_cloudwatch_metric_alarm")


def test_the_alarms_the_brief_asks_for_are_there():
    assert set(ALARMS) == {"api_5xx_rate", "api_latency", "lambda_errors", "api_throttles", "aurora_capacity",
                           "aurora_connections", "redis_memory", "redis_evictions"}


def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok():
    for name, body in ALARMS.items():
        assert re.search(r"^\s*alarm_actions\s*=\s*local\.alarm_actions$", body, re.MULTILINE), name
        assert re.search(r"^\s*ok_actions\s*=\s*local\.alarm_actions$", body, re.MULTILINE), name
    assert re.search(r"alarm_actions\s*=\s*\[aws_sns_topic\.alarms\.arn\]", MONITORING)


def test_every_alarm_says_what_it_means_and_what_to_do():
    for name, body in ALARMS.items():
        description = re.search(r'^\s*alarm_description\s*=\s*"((?:[^"\\]|\\.)*)"$', body, re.MULTILINE)
        assert description, name
        text = description.group(1)
        # PutMetricAlarm takes at most 1,024 characters; interpolations add
        # names of at most a few dozen.
        assert 150 <= len(text) <= 800, (name, len(text))
        assert re.search(r"\b(Look at|Act as|Raise|raise)\b", text), f"{name}: no advice on what to do"


def test_every_alarm_chooses_how_missing_data_counts():
    for name, body in ALARMS.items():
        assert re.search(r'^\s*treat_missing_data\s*=\s*"(missing|notBreaching|breaching|ignore)"$', body,
                         re.MULTILINE), name


def test_every_threshold_is_a_variable_or_derived_from_one():
    variables = set(re.findall(r'^variable "([a-z0-9_]+)"', (INFRA / "variables.tf").read_text(), re.MULTILINE))
    for name, body in ALARMS.items():
        threshold = re.search(r"^\s*threshold\s*=\s*(.+)$", body, re.MULTILINE).group(1).strip()
        if name == "redis_evictions":
            assert threshold == "0"  # any eviction: memory is full
            continue
        ref = re.fullmatch(r"(var|local)\.([a-z0-9_]+)(\[each\.key\])?", threshold)
        assert ref, (name, threshold)
        if ref.group(1) == "var":
            assert ref.group(2) in variables and ref.group(2).startswith("alarm_"), (name, threshold)
    assert "acu_alarm_at     = var.aurora_max_acu * var.alarm_aurora_acu_percent / 100" in MONITORING
    # The hourly purge alarms on any error (its retries may split over
    # periods); every other function on more than alarm_lambda_errors.
    assert ('lambda_error_thresholds = { for f in keys(local.lambda_functions) : f => f == local.functions.purge ? 0 : '
            'var.alarm_lambda_errors }') in MONITORING
    assert FUNCTIONS["purge"] == "purge"
    assert "threshold           = local.lambda_error_thresholds[each.key]" in ALARMS["lambda_errors"]


def test_rates_and_percentiles_need_traffic_before_they_count():
    # A quiet API is not a failing or a slow one.
    assert "IF(requests >= ${var.alarm_5xx_min_requests}, 100 * errors / requests, 0)" in ALARMS["api_5xx_rate"]
    assert "IF(requests >= ${var.alarm_latency_min_requests}, p99, 0)" in ALARMS["api_latency"]
    assert '"/read_messages"' not in (INFRA / "variables.tf").read_text().split('variable "alarm_latency_routes"')[1][:800]


def test_the_key_lets_cloudwatch_publish_to_exactly_the_alarm_topic():
    secrets = (INFRA / "secrets.tf").read_text()
    statement = secrets[secrets.index('Sid       = "CloudWatchAlarmsPublishToTheAlarmTopic"'):]
    statement = statement[:statement.index("},\n    ]")]
    assert 'Principal = { Service = "cloudwatch.amazonaws.com" }' in statement
    assert 'Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]' in statement
    assert '"kms:EncryptionContext:aws:sns:topicArn" = local.alarm_topic_arn' in statement
    locals_tf = LOCALS
    assert 'alarm_topic_name = "${local.name}-alarms"' in locals_tf
    assert "alarm_topic_arn  = \"arn:${local.partition}:sns:${var.region}:${local.account_id}:${local.alarm_topic_name}\"" in locals_tf
    topic = blocks(MONITORING, "aws_sns_topic")["alarms"]
    assert "name              = local.alarm_topic_name" in topic
    assert "kms_master_key_id = aws_kms_key.this.arn" in topic


def test_only_this_stacks_alarms_may_publish_to_the_topic():
    policy = blocks(MONITORING, "aws_sns_topic_policy")["alarms"]
    assert '"aws:SourceAccount" = local.account_id' in policy
    assert ':alarm:${local.name}-*"' in policy
    # Which is why every alarm's name starts with the stack's name.
    for name, body in ALARMS.items():
        alarm_name = re.search(r'^\s*alarm_name\s*=\s*"(.+)"$', body, re.MULTILINE).group(1)
        assert alarm_name.startswith(("${local.name}-", "${each.value}-", "${local.db_instance_ids[count.index]}-")), name
    # Every Lambda function name (each.value of the errors alarms) starts so.
    assert ('lambda_functions = { for f in flatten(values(local.functions)) : f => f == local.functions.api_handler ? '
            'local.name : "${local.name}-${f}" }') in LOCALS
    assert '"${local.name}-${count.index + 1}"' in (INFRA / "database.tf").read_text()


def test_the_email_subscription_exists_only_with_an_address():
    subscription = blocks(MONITORING, "aws_sns_topic_subscription")["alarm_email"]
    assert 'count = var.alarm_email == "" ? 0 : 1' in subscription
    assert 'protocol  = "email"' in subscription

