"""What every answer carries (nosniff, no framing, not stored), the web
page's own Content-Security-Policy as a real header, and text that is not
valid UTF-8 once percent-decoded refused rather than stored altered."""
from __future__ import annotations

import pytest

from chalicelib import wiring


def test_every_api_answer_is_not_sniffed_not_framed_and_not_stored(api):
    alice = api.register("alice")
    for r in (api.post("/register", {"user_name": "bob"}),  # carries a token
              api.post("/connect_ticket", {"user_id": alice.id}, token=alice.token),  # carries a ticket
              api.read(alice, after=0),
              api.post("/read_messages", {"user_id": alice.id, "after": "x"}, token=alice.token),  # a 400
              api.post("/nosuchroute"),
              api.get("/health")):
        assert r.headers["X-Content-Type-Options"] == "nosniff", r
        assert r.headers["X-Frame-Options"] == "DENY", r
        assert r.headers["Cache-Control"] == "no-store", r
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], r


def test_the_page_may_not_be_framed_and_connects_only_to_its_own_api_and_websocket(api, monkeypatch):
    monkeypatch.setenv("WEBSOCKET_URL", "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod")
    wiring.reset()
    page = api.client.http.get("/")
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"] == "'self' wss://abc123.execute-api.eu-west-1.amazonaws.com"
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"
    script = api.client.http.get("/static/main.js")
    assert script.headers["X-Content-Type-Options"] == "nosniff" and script.headers["Cache-Control"] == "no-cache"


def test_the_page_uploads_to_shows_and_plays_from_the_attachments_bucket_only_when_there_is_one(api, monkeypatch):
    page = api.client.http.get("/")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert (policy["img-src"], policy["media-src"], policy["connect-src"]) == ("'self' data:", "'self'", "'self'")
    monkeypatch.setenv("ATTACHMENTS_BUCKET", "messaging-prod-attachments-5f3a9c1e")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # presigning signs locally: no request is made
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    wiring.reset()
    page = api.client.http.get("/")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    bucket = "https://messaging-prod-attachments-5f3a9c1e.s3.eu-west-1.amazonaws.com"
    assert policy["connect-src"].split() == ["'self'", bucket]
    assert policy["img-src"].split() == ["'self'", "data:", bucket]
    assert policy["media-src"].split() == ["'self'", bucket]


@pytest.mark.parametrize("encoded", ["%FF", "%ED%A0%80", "%C0%80", "caf%E9"])
def test_text_that_is_not_utf8_once_percent_decoded_is_a_400_and_nothing_is_stored(api, encoded):
    alice, bob = api.register("alice"), api.register("bob")
    query = f"/send?sending_user_id={alice.id}&receiving_user_id={bob.id}&message_text=hi{encoded}"
    r = api.client.http.post(query, headers={"Authorization": f"Bearer {alice.token}"}, body=b"")
    assert r.status_code == 400 and b"message_text" in r.body, r.body
    form = f"sending_user_id={alice.id}&receiving_user_id={bob.id}&message_text=hi{encoded}".encode()
    r = api.post("/send", token=alice.token, raw_body=form,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400 and r.code == "BadRequest" and r.body["Message"].startswith("message_text:"), r
    assert api.read(bob, after=0).body["messages"] == []


def test_percent_encoded_utf8_in_a_form_body_is_stored_exactly(api):
    alice, bob = api.register("alice"), api.register("bob")
    form = f"sending_user_id={alice.id}&receiving_user_id={bob.id}&message_text=caf%C3%A9+%F0%9F%91%8B%2B".encode()
    assert api.post("/send", token=alice.token, raw_body=form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"}).status == 201
    assert [m["text"] for m in api.read(bob, after=0).body["messages"]] == ["café 👋+"]
