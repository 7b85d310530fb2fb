"""One structured JSON line per request, in CloudWatch's Embedded Metric
Format (the line is also the request's metrics), and never a secret or
message text in any log line."""
from __future__ import annotations

import json
import logging


def test_every_request_logs_one_json_line_and_no_token_password_or_text(api, caplog, database_url):
    caplog.set_level(logging.DEBUG)
    alice, bob = api.register("alice"), api.register("bob")
    secret_text = "the secret plan: meet at dawn"
    api.send(alice, bob, secret_text)
    group = api.create_group(alice)
    api.join(alice, group)
    api.send_group(alice, group, secret_text + " (group)")
    api.read(bob)
    api.post("/read_messages", {"user_id": bob.id, "after": "x"}, token=bob.token)
    api.post("/send", {"sending_user_id": alice.id}, token="v1.forged.token.value")

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.requests"]
    assert [(line["Route"], line["status"]) for line in lines] == [
        ("/register", 201), ("/register", 201), ("/send", 201), ("/create_group", 201), ("/update_group", 200),
        ("/send_group", 201), ("/read_messages", 200), ("/read_messages", 400), ("/send", 401)]
    for line in lines:
        assert_embedded_metric_format(line)
        assert set(line) - {"Cache"} == {"_aws", "Service", "Route", "StatusClass", "Latency", "DbStatements",
                                         "DbRoundTrips", "RedisRoundTrips", "request_id", "method", "status"}
        assert line["StatusClass"] == f"{line['status'] // 100}xx"
        assert line["DbRoundTrips"] <= line["DbStatements"]
        assert line["Latency"] >= 0
    assert lines[2]["DbStatements"] >= 5  # message, counters, inbox rows, their seqs, commit
    # MariaDB: the statements in one batch, and the COMMIT; SQLite runs in-process, one call each.
    assert lines[2]["DbRoundTrips"] == (2 if database_url.startswith("mysql") else 5)
    assert lines[6]["Cache"] == "off" and lines[6]["DbStatements"] >= 1
    assert lines[7]["DbStatements"] == 0 and lines[8]["DbStatements"] == 0
    # The Lambda function's name (deployed: messaging-<stage>; chalice's test client calls it api_handler).
    assert {line["Service"] for line in lines} == {"api_handler"}
    assert len({line["request_id"] for line in lines}) == len(lines)

    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (alice.token, bob.token, secret_text, "Bearer", "test-signing-secret", "forged"):
        assert secret not in everything


def test_health_is_answered_from_a_few_seconds_old_check_without_another_database_round_trip(api, caplog):
    caplog.set_level(logging.INFO)
    first, second = api.get("/health"), api.get("/health")
    assert first.status == second.status == 200 and first.body == second.body
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.requests"]
    assert [line["DbStatements"] for line in lines] == [lines[0]["DbStatements"], 0]
    assert lines[0]["DbStatements"] >= 1


def assert_embedded_metric_format(line: dict) -> None:
    """The rules of CloudWatch's Embedded Metric Format specification: a
    millisecond Timestamp; each directive's namespace, dimension sets (each
    at most 30 names, each a top-level string member) and metrics (each a
    top-level number, with a known unit)."""
    units = {"Milliseconds", "Count", "Seconds", "Bytes", "None", "Percent"}
    meta = line["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    for directive in meta["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str) and directive["Namespace"]
        for dimensions in directive["Dimensions"]:
            assert 1 <= len(dimensions) <= 30
            for name in dimensions:
                assert isinstance(line[name], str) and line[name], (name, line)
        for metric in directive["Metrics"]:
            assert isinstance(line[metric["Name"]], (int, float)) and not isinstance(line[metric["Name"]], bool)
            assert metric.get("Unit", "None") in units


def test_a_read_line_has_its_cache_path_as_a_dimension_and_a_write_line_none(api, caplog):
    caplog.set_level(logging.INFO)
    bob = api.register("bob")
    api.read(bob)
    register, read = [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.requests"]
    assert ["Service", "Cache"] in read["_aws"]["CloudWatchMetrics"][0]["Dimensions"] and read["Cache"] == "off"
    assert "Cache" not in register and all("Cache" not in d for d in register["_aws"]["CloudWatchMetrics"][0]["Dimensions"])
