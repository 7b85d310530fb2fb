"""Attachments on `make run`'s server without a bucket, over real HTTP: the
upload form posts to the server's own /_uploads (its url is relative to the
API), a send carries the upload, and the download URL (/_files/...) serves
the same bytes with the headers S3 would (Content-Type, Content-Disposition,
X-Content-Type-Options: nosniff). The form is refused when the file is
larger than declared or its Content-Type, key, policy or signature was
changed; a download URL when its signature, type, disposition or key was
changed, or once it has expired (checked on the store with a controlled
clock: the server's own clock cannot be moved). A 10 MB file goes up and
comes back whole; the times are printed, not asserted."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from chalicelib.settings import DATA_DIR
from chalicelib.storage import LocalStorage, Refused
from tests.support.devserver import DevServer

AUTH_SECRET = "attachments-local-secret-0123456789abcdef"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 16 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00pixels\xff" * 300
TEN_MB = 10 * 1024 * 1024


class Local:
    """The server's API and its two file endpoints, over httpx."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=60)
        self.users: List[str] = []

    def call(self, path: str, token: Optional[str] = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.post(path, json=params, headers=headers)

    def register(self, name: str) -> Tuple[str, str]:
        r = self.call("/register", user_name=name)
        assert r.status_code == 201, r.text
        self.users.append(r.json()["user_id"])
        return r.json()["user_id"], r.json()["token"]

    def upload_url(self, token: str, content_type: str, size: int, file_name: Optional[str] = None) -> Dict[str, Any]:
        params: Dict[str, Any] = {"content_type": content_type, "size": size}
        if file_name is not None:
            params["file_name"] = file_name
        r = self.call("/upload_url", token, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def post_form(self, upload: Dict[str, Any], data: Any, fields: Optional[Dict[str, str]] = None) -> httpx.Response:
        """The form POST a browser makes: to the url as given (relative to the API), the fields, the file last."""
        assert upload["url"] == "/_uploads", upload
        return self.http.post(upload["url"], data=fields if fields is not None else upload["fields"],
                              files={"file": ("upload.bin", data, "application/octet-stream")})

    def uploaded(self, token: str, data: bytes, content_type: str, file_name: Optional[str] = None) -> str:
        answer = self.upload_url(token, content_type, len(data), file_name)
        r = self.post_form(answer["upload"], data)
        assert r.status_code == 204, r.text
        return answer["attachment_id"]

    def send(self, token: str, sender: str, recipient: str, attachment_ids: str, text: Optional[str] = None):
        params = {"sending_user_id": sender, "receiving_user_id": recipient, "attachment_ids": attachment_ids}
        if text is not None:
            params["message_text"] = text
        return self.call("/send", token, **params)

    def download_url(self, token: str, attachment_id: str) -> httpx.Response:
        return self.call("/download_url", token, attachment_id=attachment_id)

    def file_url(self, token: str, attachment_id: str) -> str:
        r = self.download_url(token, attachment_id)
        assert r.status_code == 200 and r.json()["expires_in"] == 300, r.text
        url = r.json()["url"]
        assert url.startswith("/_files/attachments/"), url  # relative: the API's own origin
        return url


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    folder = tmp_path_factory.mktemp("attachments-local")
    server = DevServer(folder / "server.log", AUTH_SECRET=AUTH_SECRET,
                       DATABASE_URL=f"sqlite:///{folder / 'attachments.sqlite3'}")
    assert "ATTACHMENTS_BUCKET" not in os.environ  # the local store, not S3
    server.start()
    client = Local(server.url)
    try:
        yield client
    finally:
        client.http.close()
        server.stop()
        for user_id in client.users:  # the files this module's users left under data/attachments
            shutil.rmtree(DATA_DIR / "attachments" / "attachments" / user_id, ignore_errors=True)


def refused(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert words in r.json()["Message"], r.text


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


# --------------------------------------------------------------------------- the whole flow


def test_upload_send_and_download_through_the_servers_own_endpoints(local):
    alice, alice_token = local.register("alice")
    bob, bob_token = local.register("bob")
    carol, carol_token = local.register("carol")
    answer = local.upload_url(alice_token, "application/pdf", len(PDF) + 100, "Bericht ü.pdf")
    assert answer["expires_in"] == 600 and answer["upload"]["url"] == "/_uploads", answer
    fields = answer["upload"]["fields"]
    assert fields["key"] == f"attachments/uploads/{alice}/{answer['attachment_id']}"
    assert fields["Content-Type"] == "application/pdf" and {"policy", "signature"} <= set(fields)
    r = local.post_form(answer["upload"], PDF)
    assert r.status_code == 204, r.text
    pdf = answer["attachment_id"]
    png = local.uploaded(alice_token, PNG, "image/png", "cat.png")

    r = local.send(alice_token, alice, bob, f"{pdf},{png}", "two files")
    assert r.status_code == 201, r.text
    items = local.call("/read_messages", bob_token, user_id=bob, after=0).json()["messages"]
    assert [(m["text"], m["attachments"]) for m in items] == [("two files", [
        {"attachment_id": pdf, "content_type": "application/pdf", "size": len(PDF), "file_name": "Bericht ü.pdf"},
        {"attachment_id": png, "content_type": "image/png", "size": len(PNG), "file_name": "cat.png"}])]

    for token in (bob_token, alice_token):
        got = local.http.get(local.file_url(token, pdf))
        assert (got.status_code, got.content) == (200, PDF)
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"] == (
            "attachment; filename=\"Bericht _.pdf\"; filename*=UTF-8''Bericht%20%C3%BC.pdf")
        assert got.headers["x-content-type-options"] == "nosniff"
        got = local.http.get(local.file_url(token, png))
        assert (got.status_code, got.content) == (200, PNG)
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-disposition"].startswith('inline; filename="cat.png"')
        assert got.headers["x-content-type-options"] == "nosniff"

    r = local.download_url(carol_token, pdf)
    assert (r.status_code, r.json()["Code"]) == (404, "AttachmentNotFound"), r.text
    assert carol  # registered, holds nothing


def test_deleting_the_message_removes_the_file_and_its_download(local):
    alice, alice_token = local.register("alice")
    bob, bob_token = local.register("bob")
    pdf = local.uploaded(alice_token, PDF, "application/pdf")
    r = local.send(alice_token, alice, bob, pdf)
    assert r.status_code == 201, r.text
    url = local.file_url(bob_token, pdf)
    assert local.http.get(url).status_code == 200
    assert local.call("/delete_message", alice_token, message_id=r.json()["message_id"]).status_code == 200
    r = local.download_url(bob_token, pdf)
    assert (r.status_code, r.json()["Code"]) == (404, "AttachmentNotFound"), r.text
    refused(local.http.get(url), 404, "no such file")  # the URL handed out before
    assert not (DATA_DIR / "attachments" / "attachments" / alice / pdf).exists()


# --------------------------------------------------------------------------- what the form refuses


def test_the_form_refuses_what_its_policy_does_not_allow_and_stores_nothing(local):
    alice, alice_token = local.register("alice")
    bob, _ = local.register("bob")
    answer = local.upload_url(alice_token, "image/png", len(PNG), "x.png")
    other = local.upload_url(alice_token, "image/png", len(PNG) * 4000)
    upload, fields = answer["upload"], answer["upload"]["fields"]

    def changed(**change: str) -> Dict[str, str]:
        return {**fields, **change}

    policy = json.loads(base64.urlsafe_b64decode(fields["policy"]))
    bigger = base64.urlsafe_b64encode(json.dumps({**policy, "max_bytes": 10 ** 9}).encode()).decode()
    cases = [
        (PNG + b"!", None, 400, "larger"),  # one byte over the declared size
        (PNG * 3000, None, 400, "larger"),  # far over: refused while the body is read
        (b"", None, 400, "empty"),
        (PNG, changed(**{"Content-Type": "text/html"}), 403, "Content-Type"),
        (PNG, changed(**{"Content-Type": "image/png; charset=x"}), 403, "Content-Type"),
        (PNG, changed(key=other["upload"]["fields"]["key"]), 403, "key"),
        (PNG, changed(key=f"attachments/uploads/{bob}/{answer['attachment_id']}"), 403, "key"),
        (PNG, changed(signature="0" * 64), 403, "signature"),
        (PNG, changed(signature=other["upload"]["fields"]["signature"]), 403, "signature"),
        (PNG, changed(policy=bigger), 403, "signature"),  # a policy of one's own making
        (PNG, changed(policy=other["upload"]["fields"]["policy"]), 403, "signature"),
        (PNG, {k: v for k, v in fields.items() if k != "signature"}, 403, "signature"),
    ]
    for body, form, status, words in cases:
        refused(local.post_form(upload, body, form), status, words)
    refused(local.http.post("/_uploads", data=fields, files={"attachment": ("x.png", PNG)}), 400, "no file")
    refused(local.http.post("/_uploads", data=fields), 400, "multipart")
    refused(local.http.post("/_uploads", json=fields), 400, "multipart")

    # nothing was stored: under either key, a send finds no upload
    for attachment_id in (answer["attachment_id"], other["attachment_id"]):
        r = local.send(alice_token, alice, bob, attachment_id)
        assert (r.status_code, r.json()["Code"]) == (409, "AttachmentNotReady"), r.text
    assert not (DATA_DIR / "attachments" / "attachments" / bob).exists()
    assert list((DATA_DIR / "attachments" / "attachments" / alice).glob("*")) == []
    # the genuine form still works afterwards
    assert local.post_form(upload, PNG).status_code == 204
    assert local.send(alice_token, alice, bob, answer["attachment_id"]).status_code == 201


def test_a_download_url_changed_in_any_part_is_refused(local):
    alice, alice_token = local.register("alice")
    bob, bob_token = local.register("bob")
    pdf = local.uploaded(alice_token, PDF, "application/pdf", "a.pdf")
    png = local.uploaded(alice_token, PNG, "image/png", "b.png")
    assert local.send(alice_token, alice, bob, f"{pdf},{png}").status_code == 201
    url = local.file_url(bob_token, pdf)
    assert local.http.get(url).status_code == 200
    query = dict(parse_qsl(urlsplit(url).query))
    signature = query["signature"]
    for changed in (
        with_query(url, signature=("1" if signature[0] != "1" else "2") + signature[1:]),
        with_query(url, signature=""),
        with_query(url, expires=str(int(query["expires"]) + 3600)),  # longer
        with_query(url, expires=str(int(time.time()) - 10)),  # already over, unsigned
        with_query(url, type="text/html"),
        with_query(url, disposition='inline; filename="a.pdf"'),
        url.replace(pdf, png),  # another file with this file's signature
        url.split("?")[0],
    ):
        refused(local.http.get(changed), 403, "")
    assert local.http.get(url).content == PDF  # the URL as handed out still works


def test_upload_forms_and_download_urls_expire(tmp_path, monkeypatch):
    """The store with a controlled clock: the server's cannot be moved."""
    import chalicelib.storage as storage

    now = [1_900_000_000.0]
    monkeypatch.setattr(storage.time, "time", lambda: now[0])
    store = LocalStorage(tmp_path)
    url, fields = store.upload_form(key="attachments/u/a", content_type="text/plain", max_bytes=10, expires_in=600)
    now[0] += 601
    with pytest.raises(Refused) as refusal:
        store.accept(fields, io.BytesIO(b"late"))
    assert (refusal.value.status, refusal.value.reason) == (403, "the upload form has expired")
    now[0] -= 2  # 599 s after it was handed out: still good
    store.accept(fields, io.BytesIO(b"in time"))
    assert store.seal(upload_key="attachments/u/a", key="attachments/u/a") == storage.Stored(7, "text/plain")

    link = store.download_url(key="attachments/u/a", content_type="text/plain", file_name="t.txt", expires_in=300)
    query = dict(parse_qsl(urlsplit(link).query))
    now[0] += 299
    body, headers = store.opened("attachments/u/a", query)
    assert body.read() == b"in time" and headers["X-Content-Type-Options"] == "nosniff"
    body.close()
    now[0] += 2
    with pytest.raises(Refused) as refusal:
        store.opened("attachments/u/a", query)
    assert (refusal.value.status, refusal.value.reason) == (403, "the download link has expired")


# --------------------------------------------------------------------------- a large file


def test_a_10_mb_file_goes_up_and_comes_back_whole(local):
    alice, alice_token = local.register("alice")
    bob, bob_token = local.register("bob")
    data = os.urandom(TEN_MB)
    digest = hashlib.sha256(data).hexdigest()
    answer = local.upload_url(alice_token, "video/mp4", TEN_MB, "clip.mp4")
    started = time.perf_counter()
    r = local.post_form(answer["upload"], data)
    upload_seconds = time.perf_counter() - started
    assert r.status_code == 204, r.text
    assert local.send(alice_token, alice, bob, answer["attachment_id"], "a clip").status_code == 201
    url = local.file_url(bob_token, answer["attachment_id"])
    started = time.perf_counter()
    got = local.http.get(url)
    download_seconds = time.perf_counter() - started
    assert got.status_code == 200 and len(got.content) == TEN_MB
    assert hashlib.sha256(got.content).hexdigest() == digest
    assert got.headers["content-type"] == "video/mp4"
    assert got.headers["content-disposition"].startswith('attachment; filename="clip.mp4"')
    print(f"\n10 MB through the local store: upload {upload_seconds * 1000:.0f} ms,"
          f" download {download_seconds * 1000:.0f} ms")


def test_an_attached_file_cannot_be_replaced_through_its_upload_form(local):
    alice, alice_token = local.register("alice")
    bob, bob_token = local.register("bob")
    answer = local.upload_url(alice_token, "image/png", len(PNG))
    assert local.post_form(answer["upload"], PNG).status_code == 204
    assert local.send(alice_token, alice, bob, answer["attachment_id"]).status_code == 201
    local.post_form(answer["upload"], b"something else")
    assert local.http.get(local.file_url(bob_token, answer["attachment_id"])).content == PNG
