"""One structured JSON line per request, and never a secret or message text
in any log line."""
from __future__ import annotations

import json
import logging


def test_every_request_logs_one_json_line_and_no_token_password_or_text(api, caplog):
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
    assert [(line["route"], line["status"]) for line in lines] == [
        ("/register", 201), ("/register", 201), ("/send", 201), ("/create_group", 201), ("/update_group", 200),
        ("/send_group", 201), ("/read_messages", 200), ("/read_messages", 400), ("/send", 401)]
    for line in lines:
        assert set(line) == {"request_id", "method", "route", "status", "latency_ms", "cache", "db_statements",
                             "db_round_trips", "redis_round_trips"}
        assert line["db_round_trips"] <= line["db_statements"]
        assert line["latency_ms"] >= 0
    assert lines[2]["db_statements"] >= 4  # message, counter, inbox row, commit
    assert 1 <= lines[2]["db_round_trips"] <= lines[2]["db_statements"]
    assert lines[6]["cache"] == "off" and lines[6]["db_statements"] >= 1
    assert lines[7]["db_statements"] == 0 and lines[8]["db_statements"] == 0
    assert len({line["request_id"] for line in lines}) == len(lines)

    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (alice.token, bob.token, secret_text, "Bearer", "test-signing-secret", "forged"):
        assert secret not in everything


def test_health_is_answered_from_a_few_seconds_old_check_without_another_database_round_trip(api, caplog):
    caplog.set_level(logging.INFO)
    first, second = api.get("/health"), api.get("/health")
    assert first.status == second.status == 200 and first.body == second.body
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.requests"]
    assert [line["db_statements"] for line in lines] == [lines[0]["db_statements"], 0]
    assert lines[0]["db_statements"] >= 1
