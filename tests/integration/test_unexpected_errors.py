"""A 500 is a bug: it carries only a request id, and its log line names the
error's types and code locations, never the values involved."""
from __future__ import annotations

import logging

from chalicelib.repositories import Deliveries


def test_an_unexpected_error_is_a_500_with_only_a_request_id_and_a_log_line_without_values(api, monkeypatch, caplog):
    alice, bob = api.register("alice"), api.register("bob")
    secret_text = "secret text that must not be logged"

    def broken_add(self, *, message, client_message_id):
        raise RuntimeError(f"driver said: Incorrect string value {message.body!r} for column body")

    monkeypatch.setattr(Deliveries, "direct", broken_add)
    caplog.set_level(logging.DEBUG)
    r = api.send(alice, bob, secret_text)
    assert r.status == 500
    assert r.body["Code"] == "InternalServerError"
    assert set(r.body) == {"Code", "Message"}
    assert r.body["Message"].startswith("internal error, request id ")
    request_id = r.body["Message"].rsplit(" ", 1)[1]
    logged = "\n".join(rec.getMessage() + (rec.exc_text or "") for rec in caplog.records)
    assert request_id in logged and "RuntimeError" in logged and "sending.py" in logged
    assert secret_text not in logged and alice.token not in logged
    assert secret_text not in r.body["Message"]
