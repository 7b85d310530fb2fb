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

import pytest

from tests.infra import terraform_eval

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


# --------------------------------------------------------------------------- the dashboard

TEMPLATE = INFRA / "templates" / "dashboard.json.tftpl"


def template_variables() -> Dict[str, str]:
    """name -> expression of what monitoring.tf passes to the dashboard template."""
    call = MONITORING[MONITORING.index('templatefile("${path.module}/templates/dashboard.json.tftpl", {'):]
    call = call[:call.index("\n  })\n")]
    return dict(re.findall(r"^    ([a-z0-9_]+) += (.+)$", call, re.MULTILINE))


def test_the_dashboard_is_the_template_with_every_variable_used():
    assert ('resource "aws_cloudwatch_dashboard" "this" {\n  dashboard_name = local.name\n'
            '  dashboard_body = templatefile("${path.module}/templates/dashboard.json.tftpl", {') in MONITORING
    template = TEMPLATE.read_text()
    # One jsonencode, nothing around it (the trailing newline stripped).
    assert template.startswith("${jsonencode({\n") and template.endswith("\n})~}\n")
    passed = template_variables()
    assert passed["lambda_functions"] == "local.lambda_functions" and passed["api_function"] == "local.name"
    for name in passed:
        assert re.search(rf"(?<![\w.\"]){name}\b", template), f"{name} is passed but not used"


@pytest.mark.skipif(not terraform_eval.available(), reason=terraform_eval.SKIP_REASON)
def test_the_dashboard_renders(tmp_path: Path):
    functions = {f: f"messaging-prod-{f}" for value in FUNCTIONS.values()
                 for f in (value if isinstance(value, list) else [value])}
    functions[FUNCTIONS["api_handler"]] = "messaging-prod"
    values = {
        "region": "eu-west-1", "alarm_arns": [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a{i}" for i in range(3)],
        "emf_namespace": "Messaging", "emf_service": "messaging-prod", "api_name": "messaging",
        "api_gateway_stage": "v1", "api_function": "messaging-prod", "lambda_functions": functions,
        "db_instance_ids": ["messaging-prod-1", "messaging-prod-2"],
        "redis_node_ids": ["messaging-prod-001", "messaging-prod-002"],
        "api_reserved_concurrency": 50, "aurora_max_acu": 8, "acu_alarm_at": 6.4, "alarm_latency_p99_ms": 1500,
        "alarm_db_connections": 80, "alarm_redis_memory_percent": 85,
    }
    assert set(values) == set(template_variables())
    # JSON is HCL too: an object constructor with "name": value items.
    main = ('output "body" {\n  value = templatefile("${path.module}/templates/dashboard.json.tftpl", '
            f"{json.dumps(values)})\n}}\n")
    body = json.loads(terraform_eval.evaluate(tmp_path, {"main.tf": main,
                                                         "templates/dashboard.json.tftpl": TEMPLATE.read_text()})["body"])

    assert (body["start"], body["periodOverride"]) == ("-PT12H", "inherit")
    widgets = body["widgets"]
    # The alarms on top, all of them; a 24-column grid without overlaps.
    assert widgets[0]["type"] == "alarm" and (widgets[0]["x"], widgets[0]["y"], widgets[0]["width"]) == (0, 0, 24)
    assert widgets[0]["properties"]["alarms"] == values["alarm_arns"]
    cells = set()
    for w in widgets:
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24, w["properties"]["title"]
        mine = {(x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])}
        assert not cells & mine, w["properties"]["title"]
        cells |= mine
    metric = {w["properties"]["title"]: w["properties"] for w in widgets[1:]}
    assert len(metric) == 13 and all(w["type"] == "metric" for w in widgets[1:])
    assert {p["region"] for p in metric.values()} == {"eu-west-1"}

    def series(title):
        return [m for m in metric[title]["metrics"]]

    # Every function's errors, labelled by its Chalice name.
    errors = series("Lambda errors by function (per 5 min)")
    assert {m[4]["label"]: m[3] for m in errors} == functions and all(m[:3] == ["AWS/Lambda", "Errors", "FunctionName"]
                                                                      for m in errors)
    # The app's routes found by SEARCH on this stage's service, labelled by route.
    search = [m[0] for t in ("Requests by route (app, EMF; per 5 min)", "5xx by route (app, EMF; per 5 min)",
                             "Latency p99 by route (app, EMF; ms)") for m in series(t)]
    assert all('Service="messaging-prod"' in s["expression"] and s["label"] == "${PROP('Dim.Route')}" for s in search)
    assert 'StatusClass="5xx"' in search[1]["expression"]
    # API Gateway metrics select the REST API and the stage the alarms watch.
    gateway = [m for p in metric.values() for m in p["metrics"] if m[0] == "AWS/ApiGateway"]
    assert len(gateway) == 5 and all(m[2:6] == ["ApiName", "messaging", "Stage", "v1"] for m in gateway)
    assert {m[3] for m in series("API Lambda: concurrency and throttles")} == {"messaging-prod"}
    for title, ids in (("Aurora capacity (ACU) by instance", values["db_instance_ids"]),
                       ("Redis evictions by node (per 5 min)", values["redis_node_ids"])):
        assert [m[3] for m in series(title)] == ids
    assert len(series("Redis CPU % by node (engine thread, host)")) == 2 * len(values["redis_node_ids"])
    # Each threshold drawn where it applies.
    drawn = {(t, a["label"]): a["value"] for t, p in metric.items() for a in p.get("annotations", {}).get("horizontal", [])}
    assert drawn == {
        ("Latency p99 by route (app, EMF; ms)", "alarm (alarmed routes)"): 1500,
        ("API Lambda: concurrency and throttles", "reserved concurrency"): 50,
        ("Aurora capacity (ACU) by instance", "aurora_max_acu"): 8,
        ("Aurora capacity (ACU) by instance", "alarm"): 6.4,
        ("Aurora connections by instance (max)", "alarm"): 80,
        ("Aurora connections by instance (max)", "API containers"): 50,
        ("Redis memory used, % by node", "alarm"): 85,
    }
