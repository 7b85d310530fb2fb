"""Attachments over HTTP with S3 (a moto server), on SQLite and on MariaDB
with Redis: /upload_url hands out a presigned POST, the client uploads to
the bucket itself, /send and /send_group carry the upload by its id, the
recipient's /read_messages and /sync show it, /download_url hands each
holder of the message a presigned GET (the same bytes, the declared type,
inline for images and attachment otherwise), and the file goes with the
message: deleted with it, purged with it, swept when never attached.

moto does not enforce a POST policy's conditions, so the policy is checked
by decoding it, and the server's own check at attach time by putting a
non-conforming object in the bucket directly. Bad input is a clear 4xx and
stores nothing."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest

from chalicelib import wiring
from chalicelib.db import Database
from chalicelib.dialects import to_db_time
from chalicelib.settings import Settings
from tests.conftest import Api, User
from tests.support.http import assert_bad_request
from tests.support.lambda_events import LambdaContext
from tests.support.s3 import Bucket, moto_server, s3_bucket  # noqa: F401 - fixtures

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x01\x02pixels" * 100
SCHEDULED_EVENT = {"version": "0", "id": "5f0f1a2b-0000-4000-8000-000000000001", "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": "123456789012", "time": "2026-12-01T00:00:00Z",
                   "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/purge"],
                   "detail": {}}


@pytest.fixture
def aapi(app_env, s3_bucket: Bucket, monkeypatch, request) -> Iterator[Api]:  # noqa: F811
    """The api helper with attachments in a fresh moto bucket; MariaDB with Redis."""
    from chalice.test import Client

    from app import app

    for name, value in s3_bucket.settings.items():
        monkeypatch.setenv(name, value)
    for name in ("RETENTION_DAYS", "MAX_ATTACHMENT_BYTES", "ATTACHMENT_TYPES"):
        monkeypatch.delenv(name, raising=False)
    if app_env["DATABASE_URL"].startswith("mysql"):
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("session_redis").url)
        monkeypatch.setenv("REDIS_TIMEOUT", "1")
    wiring.reset()
    with Client(app) as client:
        yield Api(client)


# --------------------------------------------------------------------------- steps


def upload_url(api: Api, user: User, content_type: str, size: int, file_name: Optional[str] = None, **extra: Any):
    params: Dict[str, Any] = {"content_type": content_type, "size": size, **extra}
    if file_name is not None:
        params["file_name"] = file_name
    return api.post("/upload_url", params, token=user.token)


def post_form(upload: Dict[str, Any], data: bytes, file_type: str = "application/octet-stream") -> httpx.Response:
    """The browser's form POST: the fields as given, the file last."""
    return httpx.post(upload["url"], data=upload["fields"], files={"file": ("upload.bin", data, file_type)},
                      timeout=30)


def uploaded(api: Api, user: User, data: bytes, content_type: str, file_name: Optional[str] = None) -> str:
    """An upload of `data` as `content_type`, stored in the bucket: its attachment id."""
    r = upload_url(api, user, content_type, len(data), file_name)
    assert r.status == 200, r
    stored = post_form(r.body["upload"], data)
    assert stored.status_code in (200, 201, 204), stored.text
    return r.body["attachment_id"]


def key_of(user: User, attachment_id: str) -> str:
    """Where a file a message carries is kept (copied there from its upload at the send)."""
    return f"attachments/files/{user.id}/{attachment_id}"


def upload_key_of(user: User, attachment_id: str) -> str:
    """Where the upload form writes."""
    return f"attachments/uploads/{user.id}/{attachment_id}"


def ids(*attachment_ids: str) -> str:
    return ",".join(attachment_ids)


def send(api: Api, sender: User, recipient: User, text: Optional[str] = None, attachments: Optional[str] = None,
         headers: Optional[Dict[str, str]] = None):
    params: Dict[str, Any] = {"sending_user_id": sender.id, "receiving_user_id": recipient.id}
    if text is not None:
        params["message_text"] = text
    if attachments is not None:
        params["attachment_ids"] = attachments
    return api.post("/send", params, token=sender.token, headers=headers)


def send_group(api: Api, sender: User, group_id: str, text: Optional[str] = None, attachments: Optional[str] = None):
    params: Dict[str, Any] = {"sending_user_id": sender.id, "group_id": group_id}
    if text is not None:
        params["message_text"] = text
    if attachments is not None:
        params["attachment_ids"] = attachments
    return api.post("/send_group", params, token=sender.token)


def download_url(api: Api, user: User, attachment_id: str):
    return api.post("/download_url", {"attachment_id": attachment_id}, token=user.token)


def fetched(api: Api, user: User, attachment_id: str) -> httpx.Response:
    r = download_url(api, user, attachment_id)
    assert r.status == 200 and set(r.body) == {"url", "expires_in"} and r.body["expires_in"] == 300, r
    assert r.body["url"].startswith("http://127.0.0.1:"), r  # absolute: the bucket's, not the API's
    return httpx.get(r.body["url"], timeout=30)


def message_events(api: Api, user: User) -> List[Dict[str, Any]]:
    return [e for e in api.sync_all(user) if e["type"] == "message"]


def assert_nothing_sent(api: Api, *users: User) -> None:
    for user in users:
        assert api.read_all(user) == [], user.name
        assert message_events(api, user) == [], user.name


def assert_refused(r, status: int, code: str, naming: Optional[str] = None) -> None:
    assert (r.status, r.code) == (status, code), r
    assert set(r.body) == {"Code", "Message"} and r.body["Message"], r
    if naming is not None:
        assert naming in r.body["Message"], r


def sql(app_env, statement: str, params: tuple = (), *, write: bool = False):
    db = Database(Settings.from_env({"DATABASE_URL": app_env["DATABASE_URL"]}))
    try:
        if write:
            return db.run(lambda tx: tx.execute(statement, params), write=True)
        return db.run(lambda tx: tx.all(statement, params), write=False)
    finally:
        db.close()


def uploads_of(app_env, user: User) -> List[tuple]:
    return [tuple(row) for row in sql(app_env, "SELECT id, message_id FROM attachments WHERE uploader_id = %s"
                                               " ORDER BY created_at", (user.id,))]


def run_purge() -> Dict[str, Any]:
    import app as app_module

    return app_module.purge(SCHEDULED_EVENT, LambdaContext(remaining_ms=60_000))


def backdate_message(app_env, message_id: str, days: int) -> None:
    old = to_db_time(datetime.now(timezone.utc) - timedelta(days=days))
    sql(app_env, "UPDATE messages SET sent_at = %s WHERE id = %s", (old, message_id), write=True)
    sql(app_env, "UPDATE inbox SET sent_at = %s WHERE message_id = %s", (old, message_id), write=True)


def backdate_upload(app_env, attachment_id: str, hours: float) -> None:
    old = to_db_time(datetime.now(timezone.utc) - timedelta(hours=hours))
    sql(app_env, "UPDATE attachments SET created_at = %s WHERE id = %s", (old, attachment_id), write=True)


# --------------------------------------------------------------------------- the upload form


def test_upload_url_answers_a_presigned_post_whose_policy_pins_key_type_and_size(aapi, s3_bucket, app_env):  # noqa: F811,E501
    alice = aapi.register("alice")
    before = datetime.now(timezone.utc)
    r = upload_url(aapi, alice, "application/pdf", 12345, "report.pdf")
    assert r.status == 200 and set(r.body) == {"attachment_id", "upload", "expires_in"}, r
    attachment_id = r.body["attachment_id"]
    assert str(uuid.UUID(attachment_id)) == attachment_id and r.body["expires_in"] == 600
    upload = r.body["upload"]
    assert set(upload) == {"url", "fields"}
    assert upload["url"] == f"{s3_bucket.endpoint}/{s3_bucket.name}", upload  # absolute, the bucket's
    fields = upload["fields"]
    assert fields["key"] == upload_key_of(alice, attachment_id)
    assert fields["Content-Type"] == "application/pdf"
    assert {"policy", "x-amz-signature", "x-amz-algorithm", "x-amz-credential", "x-amz-date"} <= set(fields)

    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"key": upload_key_of(alice, attachment_id)} in conditions, conditions
    assert {"bucket": s3_bucket.name} in conditions, conditions
    assert {"Content-Type": "application/pdf"} in conditions, conditions  # equality, not starts-with
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions), conditions
    assert ["content-length-range", 1, 12345] in conditions, conditions
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert timedelta(seconds=590) <= expiration - before <= timedelta(seconds=610), (before, expiration)
    # Asked for, not yet uploaded: a row of alice's, attached to nothing; nothing in the bucket.
    assert uploads_of(app_env, alice) == [(attachment_id, None)]
    assert s3_bucket.keys() == []


def test_upload_url_takes_the_user_id_of_the_token_and_refuses_another(aapi):
    alice, bob = aapi.register("alice"), aapi.register("bob")
    r = upload_url(aapi, alice, "image/png", 10, user_id=alice.id)
    assert r.status == 200 and r.body["upload"]["fields"]["key"].startswith(f"attachments/uploads/{alice.id}/"), r
    r = upload_url(aapi, alice, "image/png", 10, user_id=bob.id)
    assert r.status == 403, r


# --------------------------------------------------------------------------- sending and reading


def test_a_direct_message_carries_uploads_to_the_recipient_who_downloads_them(aapi, s3_bucket):  # noqa: F811
    alice, bob, carol = aapi.register("alice"), aapi.register("bob"), aapi.register("carol")
    pdf = uploaded(aapi, alice, PDF, "application/pdf", "report ü.pdf")
    png = uploaded(aapi, alice, PNG, "image/png", "cat.png")
    assert s3_bucket.keys() == sorted([upload_key_of(alice, pdf), upload_key_of(alice, png)])

    r = send(aapi, alice, bob, "see attached", ids(pdf, png))
    assert r.status == 201 and r.body["duplicate"] is False, r
    message_id = r.body["message_id"]
    expected = [{"attachment_id": pdf, "content_type": "application/pdf", "size": len(PDF),
                 "file_name": "report ü.pdf"},
                {"attachment_id": png, "content_type": "image/png", "size": len(PNG), "file_name": "cat.png"}]

    items = aapi.read_all(bob)
    assert [(m["message_id"], m["text"], m["attachments"]) for m in items] == [
        (message_id, "see attached", expected)], items
    for user in (bob, alice):  # the sender's own stream holds it too
        events = message_events(aapi, user)
        assert [(e["message_id"], e["text"], e["attachments"]) for e in events] == [
            (message_id, "see attached", expected)], events

    for user in (bob, alice):
        got = fetched(aapi, user, pdf)
        assert got.status_code == 200 and got.content == PDF, got
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"].startswith('attachment; filename="report _.pdf"'), got.headers
        assert "filename*=UTF-8''report%20%C3%BC.pdf" in got.headers["content-disposition"], got.headers
        got = fetched(aapi, user, png)
        assert got.status_code == 200 and got.content == PNG, got
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-disposition"].startswith('inline; filename="cat.png"'), got.headers

    for attachment_id in (pdf, png):  # no message in carol's stream carries it
        assert_refused(download_url(aapi, carol, attachment_id), 404, "AttachmentNotFound")
    assert_refused(download_url(aapi, carol, str(uuid.uuid4())), 404, "AttachmentNotFound")
    assert_bad_request(download_url(aapi, bob, "not-a-uuid"), "attachment_id")


def test_text_is_optional_with_attachments_and_plain_messages_carry_none(aapi):
    alice, bob = aapi.register("alice"), aapi.register("bob")
    plain = send(aapi, alice, bob, "just text")
    assert plain.status == 201, plain
    png = uploaded(aapi, alice, PNG, "image/png")
    r = send(aapi, alice, bob, None, png)
    assert r.status == 201, r
    items = aapi.read_all(bob)
    assert [(m["text"], m["attachments"]) for m in items] == [
        ("just text", []),
        ("", [{"attachment_id": png, "content_type": "image/png", "size": len(PNG), "file_name": None}])], items
    got = fetched(aapi, bob, png)
    assert got.content == PNG and got.headers["content-disposition"].startswith('inline; filename="attachment"')


def test_a_group_message_carries_uploads_to_every_member_and_only_them(aapi):
    alice, bob, carol, dave = (aapi.register(n) for n in ("alice", "bob", "carol", "dave"))
    group = aapi.create_group(alice, "with files")
    for user in (alice, bob, carol):
        assert aapi.join(user, group).status == 200
    pdf = uploaded(aapi, bob, PDF, "application/pdf", "minutes.pdf")
    r = send_group(aapi, bob, group, None, pdf)
    assert r.status == 201 and r.body["recipients"] == 2, r  # the members but the sender
    carried = [{"attachment_id": pdf, "content_type": "application/pdf", "size": len(PDF),
                "file_name": "minutes.pdf"}]
    for user in (alice, bob, carol):
        if user != bob:  # /read_messages leaves out one's own
            assert [(m["group_id"], m["text"], m["attachments"]) for m in aapi.read_all(user)] == [
                (group, "", carried)], user.name
        assert [e["attachments"] for e in message_events(aapi, user)] == [carried], user.name
        got = fetched(aapi, user, pdf)
        assert (got.status_code, got.content, got.headers["content-type"]) == (200, PDF, "application/pdf")
        assert got.headers["content-disposition"].startswith('attachment; filename="minutes.pdf"')
    assert_refused(download_url(aapi, dave, pdf), 404, "AttachmentNotFound")
    # dave joins after: the message is not in his stream, so neither is the file
    assert aapi.join(dave, group).status == 200
    assert_refused(download_url(aapi, dave, pdf), 404, "AttachmentNotFound")


def test_a_retry_with_the_same_idempotency_key_answers_the_same_message(aapi):
    alice, bob = aapi.register("alice"), aapi.register("bob")
    pdf = uploaded(aapi, alice, PDF, "application/pdf", "a.pdf")
    key = {"Idempotency-Key": f"send-{uuid.uuid4()}"}
    first = send(aapi, alice, bob, "once", pdf, headers=key)
    assert first.status == 201 and first.body["duplicate"] is False, first
    again = send(aapi, alice, bob, "once", pdf, headers=key)
    assert again.status == 200 and again.body["duplicate"] is True, again
    assert (again.body["message_id"], again.body["sent_at"]) == (first.body["message_id"], first.body["sent_at"])
    items = aapi.read_all(bob)
    assert [(m["message_id"], [a["attachment_id"] for a in m["attachments"]]) for m in items] == [
        (first.body["message_id"], [pdf])]
    assert fetched(aapi, bob, pdf).content == PDF
    # the same key with other attachments is another send: refused, nothing new
    png = uploaded(aapi, alice, PNG, "image/png")
    other = send(aapi, alice, bob, "once", png, headers=key)
    assert_refused(other, 409, "IdempotencyConflict")
    assert len(aapi.read_all(bob)) == 1


# --------------------------------------------------------------------------- the file goes with its message


def test_deleting_the_message_deletes_its_files_and_their_download(aapi, s3_bucket, app_env):  # noqa: F811
    alice, bob = aapi.register("alice"), aapi.register("bob")
    pdf = uploaded(aapi, alice, PDF, "application/pdf", "gone.pdf")
    png = uploaded(aapi, alice, PNG, "image/png", "stays.png")
    doomed = send(aapi, alice, bob, "soon gone", pdf)
    kept = send(aapi, alice, bob, "stays", png)
    assert (doomed.status, kept.status) == (201, 201)
    earlier = download_url(aapi, bob, pdf)
    assert earlier.status == 200, earlier

    r = aapi.post("/delete_message", {"message_id": doomed.body["message_id"]}, token=alice.token)
    assert r.status == 200, r
    assert not s3_bucket.exists(key_of(alice, pdf))
    assert s3_bucket.keys() == [key_of(alice, png)]
    for user in (alice, bob):
        assert_refused(download_url(aapi, user, pdf), 404, "AttachmentNotFound")
    # the URL handed out before finds nothing (S3 answers 403 for a missing key to whom may not list the bucket)
    assert httpx.get(earlier.body["url"], timeout=30).status_code in (403, 404)
    assert fetched(aapi, bob, png).content == PNG
    assert [row[0] for row in uploads_of(app_env, alice)] == [png]
    deleted = [e for e in message_events(aapi, bob) if e["message_id"] == doomed.body["message_id"]]
    assert [(e["deleted"], e["attachments"]) for e in deleted] == [(True, [])], deleted


def test_the_purge_deletes_the_files_of_purged_messages(aapi, s3_bucket, app_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RETENTION_DAYS", "30")
    wiring.reset()
    alice, bob = aapi.register("alice"), aapi.register("bob")
    old_pdf = uploaded(aapi, alice, PDF, "application/pdf")
    new_png = uploaded(aapi, alice, PNG, "image/png")
    old = send(aapi, alice, bob, "old", old_pdf)
    new = send(aapi, alice, bob, "new", new_png)
    assert (old.status, new.status) == (201, 201)
    run_purge()  # what other tests on this database left behind
    backdate_message(app_env, old.body["message_id"], days=40)
    result = run_purge()
    assert result["finished"] is True and result["messages"] >= 1, result
    assert s3_bucket.keys() == [key_of(alice, new_png)]
    assert [row[0] for row in uploads_of(app_env, alice)] == [new_png]
    assert [m["text"] for m in aapi.read_all(bob)] == ["new"]
    assert_refused(download_url(aapi, bob, old_pdf), 404, "AttachmentNotFound")
    assert fetched(aapi, bob, new_png).content == PNG


def test_the_purge_sweeps_uploads_never_attached_after_a_day_even_without_retention(
        aapi, s3_bucket, app_env):  # noqa: F811
    alice, bob = aapi.register("alice"), aapi.register("bob")
    stale = uploaded(aapi, alice, PDF, "application/pdf")
    fresh = uploaded(aapi, alice, PNG, "image/png")
    attached = uploaded(aapi, alice, PNG, "image/png")
    assert send(aapi, alice, bob, None, attached).status == 201
    backdate_upload(app_env, stale, hours=25)
    backdate_upload(app_env, attached, hours=48)  # attached: kept, however old
    result = run_purge()
    assert result["finished"] is True and result["batches"] >= 1, result
    assert s3_bucket.keys() == sorted([upload_key_of(alice, fresh), key_of(alice, attached)])
    assert sorted(row[0] for row in uploads_of(app_env, alice)) == sorted([fresh, attached])
    assert_refused(send(aapi, alice, bob, None, stale), 409, "AttachmentNotReady")
    assert send(aapi, alice, bob, None, fresh).status == 201


# --------------------------------------------------------------------------- what attach time checks


@pytest.mark.parametrize("stored_as, body", [
    ("text/html", PNG),  # another type than declared
    ("image/png", PNG + b"!"),  # one byte more than declared
], ids=["other-type", "larger"])
def test_an_object_other_than_declared_is_refused_at_send_and_nothing_is_stored(aapi, s3_bucket, app_env,  # noqa: F811
                                                                                stored_as, body):
    alice, bob = aapi.register("alice"), aapi.register("bob")
    group = aapi.create_group(alice, "g")
    assert aapi.join(alice, group).status == 200 and aapi.join(bob, group).status == 200
    r = upload_url(aapi, alice, "image/png", len(PNG), "x.png")
    assert r.status == 200, r
    attachment_id = r.body["attachment_id"]
    # straight into the bucket, as a client ignoring the form's conditions could (moto does not enforce them)
    s3_bucket.s3.put_object(Bucket=s3_bucket.name, Key=upload_key_of(alice, attachment_id), Body=body,
                            ContentType=stored_as)
    assert_refused(send(aapi, alice, bob, "look", attachment_id), 409, "AttachmentNotReady", "attachment_ids")
    assert_refused(send_group(aapi, alice, group, "look", attachment_id), 409, "AttachmentNotReady")
    assert_nothing_sent(aapi, alice, bob)
    assert uploads_of(app_env, alice) == [(attachment_id, None)]


def test_an_empty_object_is_refused_at_send(aapi, s3_bucket):  # noqa: F811
    alice, bob = aapi.register("alice"), aapi.register("bob")
    r = upload_url(aapi, alice, "text/plain", 10)
    s3_bucket.s3.put_object(Bucket=s3_bucket.name, Key=upload_key_of(alice, r.body["attachment_id"]), Body=b"",
                            ContentType="text/plain")
    assert_refused(send(aapi, alice, bob, "empty", r.body["attachment_id"]), 409, "AttachmentNotReady")
    assert_nothing_sent(aapi, alice, bob)


# --------------------------------------------------------------------------- bad input


def test_upload_url_refuses_an_unknown_type_and_a_size_over_the_limit_storing_nothing(aapi, app_env, s3_bucket):  # noqa: F811,E501
    alice = aapi.register("alice")
    for content_type in ("text/html", "image/svg+xml", "application/x-msdownload"):
        assert_bad_request(upload_url(aapi, alice, content_type, 10), "content_type")
    for content_type in ("image/png; charset=x", "png", ""):
        assert_bad_request(upload_url(aapi, alice, content_type, 10), "content_type")
    assert_refused(upload_url(aapi, alice, "image/png", 25 * 1024 * 1024 + 1), 413, "PayloadTooLarge", "size")
    for size in (0, -1, "ten"):
        assert_bad_request(upload_url(aapi, alice, "image/png", size), "size")
    assert_bad_request(aapi.post("/upload_url", {"size": 10}, token=alice.token), "content_type")
    assert uploads_of(app_env, alice) == []
    assert s3_bucket.keys() == []
    assert upload_url(aapi, alice, "IMAGE/PNG", 25 * 1024 * 1024).status == 200  # the limit itself, any case


def test_sends_with_unusable_attachment_ids_are_refused_and_store_nothing(aapi, app_env):
    alice, bob = aapi.register("alice"), aapi.register("bob")
    group = aapi.create_group(alice, "g")
    assert aapi.join(alice, group).status == 200 and aapi.join(bob, group).status == 200

    never = upload_url(aapi, alice, "image/png", 100).body["attachment_id"]
    assert_refused(send(aapi, alice, bob, "x", never), 409, "AttachmentNotReady", never)
    assert_refused(send_group(aapi, alice, group, "x", never), 409, "AttachmentNotReady", never)

    bobs = uploaded(aapi, bob, PNG, "image/png")
    assert_refused(send(aapi, alice, bob, "x", bobs), 409, "AttachmentNotReady", bobs)
    assert_refused(send_group(aapi, alice, group, "x", bobs), 409, "AttachmentNotReady", bobs)

    unknown = str(uuid.uuid4())
    assert_refused(send(aapi, alice, bob, "x", unknown), 409, "AttachmentNotReady", unknown)

    mine = uploaded(aapi, alice, PNG, "image/png")
    # one unusable id among good ones: the whole send is refused, the good one stays free
    assert_refused(send(aapi, alice, bob, "x", ids(mine, never)), 409, "AttachmentNotReady")

    for bad in ("not-a-uuid", f"{mine},nope", f"{mine},,{mine}", ""):
        assert_bad_request(send(aapi, alice, bob, "x", bad), "attachment_ids")
        assert_bad_request(send_group(aapi, alice, group, "x", bad), "attachment_ids")
    eleven = ids(*(str(uuid.uuid4()) for _ in range(11)))
    assert_bad_request(send(aapi, alice, bob, "x", eleven), "attachment_ids")
    assert_bad_request(send_group(aapi, alice, group, "x", eleven), "attachment_ids")
    assert_bad_request(send(aapi, alice, bob), "message_text")
    assert_bad_request(send_group(aapi, alice, group), "message_text")
    assert_bad_request(send(aapi, alice, bob, ""), "message_text")

    assert_nothing_sent(aapi, alice, bob)
    assert sorted(uploads_of(app_env, alice)) == sorted([(never, None), (mine, None)])
    assert uploads_of(app_env, bob) == [(bobs, None)]


def test_an_upload_is_attached_once(aapi, app_env):
    alice, bob = aapi.register("alice"), aapi.register("bob")
    group = aapi.create_group(alice, "g")
    assert aapi.join(alice, group).status == 200 and aapi.join(bob, group).status == 200
    png = uploaded(aapi, alice, PNG, "image/png")
    first = send(aapi, alice, bob, "first", png)
    assert first.status == 201, first
    assert_refused(send(aapi, alice, bob, "again", png), 409, "AttachmentNotReady", png)
    assert_refused(send_group(aapi, alice, group, "again", png), 409, "AttachmentNotReady", png)
    assert_refused(send(aapi, alice, bob, "twice in one", ids(png, png)), 409, "AttachmentNotReady", png)
    assert [m["text"] for m in aapi.read_all(bob)] == ["first"]
    assert [e["text"] for e in message_events(aapi, alice)] == ["first"]
    assert uploads_of(app_env, alice) == [(png, first.body["message_id"])]


def test_ten_attachments_are_allowed(aapi):
    alice, bob = aapi.register("alice"), aapi.register("bob")
    ten = [uploaded(aapi, alice, b"line %d\n" % i, "text/plain", f"{i}.txt") for i in range(10)]
    r = send(aapi, alice, bob, None, ids(*ten))
    assert r.status == 201, r
    [item] = aapi.read_all(bob)
    assert [a["attachment_id"] for a in item["attachments"]] == ten  # in the order given
    assert fetched(aapi, bob, ten[7]).content == b"line 7\n"


# --------------------------------------------------------------------------- what was checked is what is served


def test_an_attached_file_cannot_be_replaced_through_its_upload_form(aapi):
    alice, bob = aapi.register("alice"), aapi.register("bob")
    r = upload_url(aapi, alice, "image/png", len(PNG), "a.png")
    assert post_form(r.body["upload"], PNG).status_code == 204
    assert send(aapi, alice, bob, "look", r.body["attachment_id"]).status == 201
    post_form(r.body["upload"], b"something else")  # S3 takes it: the form has not expired
    assert fetched(aapi, bob, r.body["attachment_id"]).content == PNG


def test_a_message_gone_with_both_accounts_takes_its_files(aapi, s3_bucket, app_env):  # noqa: F811
    alice, bob = aapi.register("alice"), aapi.register("bob")
    pdf = uploaded(aapi, alice, PDF, "application/pdf")
    message_id = send(aapi, alice, bob, "bye", pdf).body["message_id"]
    assert aapi.post("/delete_account", {}, token=alice.token).status == 200
    assert fetched(aapi, bob, pdf).content == PDF  # still bob's
    assert aapi.post("/delete_account", {}, token=bob.token).status == 200
    assert sql(app_env, "SELECT id FROM messages WHERE id = %s", (message_id,)) == []
    run_purge()
    assert s3_bucket.keys() == [] and uploads_of(app_env, alice) == []


def test_an_upload_attached_while_the_sweep_runs_keeps_its_file(aapi, s3_bucket, app_env, monkeypatch):  # noqa: F811
    from chalicelib.storage import S3Storage

    alice, bob = aapi.register("alice"), aapi.register("bob")
    png = uploaded(aapi, alice, PNG, "image/png")
    backdate_upload(app_env, png, hours=25)
    original, sent = S3Storage.delete, []

    def delete(self, *, keys):  # alice attaches it between the sweep's read and its delete
        if not sent:
            sent.append(send(aapi, alice, bob, "just in time", png))
        return original(self, keys=keys)

    monkeypatch.setattr(S3Storage, "delete", delete)
    run_purge()
    if sent[0].status == 201:  # the send won: the message's file must stay
        assert fetched(aapi, bob, png).content == PNG
    else:  # the sweep won: nothing may carry the id
        assert_refused(sent[0], 409, "AttachmentNotReady")
        assert aapi.read_all(bob) == []
