"""Attachments through the Python client library and its command line, over
real HTTP against the development server (`make run`'s), whose local store
keeps files beside its SQLite file: here the test's own folder, never the
project's data/. A file goes up and comes down byte for byte, streamed (a
10 MB file never held in memory: measured); `send --file` and `download` as
a person runs them; a type the server does not take and a file too large
are one line and a non-zero exit, with nothing uploaded; a send with a file
survives a server that is down at first, and its lost acknowledgement,
uploading the file once."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import httpx
import pytest

from messaging_client import Client, Messenger, Store
from messaging_client.api import AttachmentNotFound, content_type_of
from messaging_client.messenger import outbox_file
from tests.support.devserver import PROJECT_ROOT, DevServer
from tests.support.flaky_proxy import FlakyProxy
from tests.support.servers import free_port

MiB = 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    # SQLite in the test's folder: the local store keeps files in tmp_path/attachments.
    running = DevServer(tmp_path / "server.log", DATABASE_URL=f"sqlite:///{tmp_path / 'server.sqlite3'}").start()
    yield running
    running.stop()


def stored_files(tmp_path: Path) -> List[Path]:
    """The files the server's local store holds (each has a .type beside it)."""
    root = tmp_path / "attachments"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".type") if root.exists() else []


def user(api: str, name: str, tmp_path: Path) -> Messenger:
    client = Client(api, retries=2)
    registered = client.register(name)
    client.token = registered.token
    return Messenger(client, Store(tmp_path / f"{name}-{registered.user_id[:8]}.sqlite3", registered.user_id),
                     registered.user_id)


def a_file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    with open(path, "wb") as out:
        for _ in range(size // MiB):
            out.write(os.urandom(MiB))
        out.write(os.urandom(size % MiB))
    return path


# --------------------------------------------------------------------------- the library


def test_a_file_goes_up_with_a_message_and_comes_down_the_same_bytes(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    photo = a_file(tmp_path, "holiday.jpg", 300_000)
    attachment = alice.client.upload(photo)
    assert (attachment.content_type, attachment.size, attachment.file_name) == ("image/jpeg", 300_000, "holiday.jpg")
    sent = alice.client.send(alice.me, bob.me, "look", attachment_ids=[attachment.attachment_id])

    # Through the outbox too, the text left out, with a type and a name of the sender's choosing.
    notes = a_file(tmp_path, "notes.bin", 1000)
    key = alice.send(bob.me, files=[outbox_file(notes, content_type="text/plain", file_name="notes.txt")])
    assert alice.store.outbox_state(key)["state"] == "sent"

    received = bob.catch_up()
    assert [(m["message_id"], m["text"]) for m in received[:1]] == [(sent.message_id, "look")]
    assert received[0]["attachments"] == [{"attachment_id": attachment.attachment_id, "content_type": "image/jpeg",
                                           "size": 300_000, "file_name": "holiday.jpg"}]
    assert received[1]["text"] == "" and [a["file_name"] for a in received[1]["attachments"]] == ["notes.txt"]
    # Kept with the messages in both stores.
    assert [m["attachments"] for m in bob.store.history(f"direct:{alice.me}")] == \
        [m["attachments"] for m in received]
    mine = alice.store.history(f"direct:{bob.me}")  # the outbox's send, as acknowledged
    assert [[a["file_name"] for a in m["attachments"]] for m in mine] == [["notes.txt"]]
    alice.sync()  # and the one sent by the client alone, from her stream
    assert [m["attachments"] for m in alice.store.history(f"direct:{bob.me}")] == \
        [m["attachments"] for m in received]

    saved = tmp_path / "downloaded.jpg"
    assert bob.client.download(attachment.attachment_id, saved) == 300_000
    assert saved.read_bytes() == photo.read_bytes()
    notes_id = received[1]["attachments"][0]["attachment_id"]
    assert bob.client.download(notes_id, tmp_path / "n") == 1000 and (tmp_path / "n").read_bytes() == \
        notes.read_bytes()
    # The files are in the test's folder, not the project's data/.
    assert len(stored_files(tmp_path)) == 2

    # Someone who holds no message carrying it is refused; a deleted message takes its files with it.
    carol = user(server.url, "carol", tmp_path)
    with pytest.raises(AttachmentNotFound):
        carol.client.download(attachment.attachment_id, tmp_path / "not-hers")
    assert not (tmp_path / "not-hers").exists() and not list(tmp_path.glob(".not-hers*"))
    alice.delete(sent.message_id)
    bob.catch_up()
    assert bob.store.message(sent.message_id)["attachments"] == []
    with pytest.raises(AttachmentNotFound):
        bob.client.download(attachment.attachment_id, tmp_path / "gone")


def test_a_group_message_carries_files_to_every_member(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    group = alice.client.create_group("pictures")
    assert alice.client.update_group(alice.me, group) and bob.client.update_group(bob.me, group)
    picture = a_file(tmp_path, "a.png", 5000)
    alice.send(group, "two", group=True, files=[picture, picture])
    [message] = bob.catch_up()
    assert [a["file_name"] for a in message["attachments"]] == ["a.png", "a.png"]
    for i, each in enumerate(message["attachments"]):
        bob.client.download(each["attachment_id"], tmp_path / f"got{i}")
        assert (tmp_path / f"got{i}").read_bytes() == picture.read_bytes()


def test_10_mb_goes_up_and_down_streamed_never_whole_in_memory(server, tmp_path, capsys):
    alice = user(server.url, "alice", tmp_path)
    big = a_file(tmp_path, "big.mp4", 10 * MiB)
    requests: List[httpx.Request] = []
    alice.client._http.event_hooks["request"].append(requests.append)

    started = time.perf_counter()
    attachment = alice.client.upload(big)
    up = time.perf_counter() - started
    alice.client.send(alice.me, alice.me, attachment_ids=[attachment.attachment_id])  # a note to self
    started = time.perf_counter()
    assert alice.client.download(attachment.attachment_id, tmp_path / "back.mp4") == 10 * MiB
    down = time.perf_counter() - started
    assert (tmp_path / "back.mp4").read_bytes() == big.read_bytes()
    with capsys.disabled():
        print(f"\n10 MiB through the library: upload {up:.3f} s ({10 / up:.0f} MiB/s),"
              f" download {down:.3f} s ({10 / down:.0f} MiB/s)")

    # The form went with a Content-Length (S3 refuses a chunked POST), the file after every field, and
    # no Authorization to storage.
    form = next(r for r in requests if r.url.path == "/_uploads")
    assert int(form.headers["Content-Length"]) > 10 * MiB and "Authorization" not in form.headers
    assert "Transfer-Encoding" not in form.headers

    # Again, measuring what Python allocates meanwhile: a few chunks, not 10 MiB.
    tracemalloc.start()
    try:
        again = alice.client.upload(big)
        _, peak_up = tracemalloc.get_traced_memory()
        alice.client.send(alice.me, alice.me, attachment_ids=[again.attachment_id])
        tracemalloc.reset_peak()
        alice.client.download(again.attachment_id, tmp_path / "again.mp4")
        _, peak_down = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_up < 2 * MiB and peak_down < 2 * MiB, (peak_up, peak_down)
    with capsys.disabled():
        print(f"peak Python memory: upload {peak_up / 1024:.0f} KiB, download {peak_down / 1024:.0f} KiB")


def test_a_send_with_a_file_survives_a_server_down_at_first_and_a_lost_answer_uploading_once(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    document = a_file(tmp_path, "report.pdf", 200_000)
    down = Messenger(Client(f"http://127.0.0.1:{free_port()}", alice.client.token, retries=0), alice.store, alice.me)
    key = down.send(bob.me, "the report", files=[document])
    assert down.store.outbox_state(key)["state"] == "pending"
    assert down.store.outbox_files(key)[0].attachment_id is None  # not uploaded: kept by path
    assert stored_files(tmp_path) == []
    down.client.close()
    alice.store.close()

    # A later process on the same store, the server up now but the answer to the send lost (a 503 after
    # the server committed it): the retry sends the same upload with the same key.
    proxy = FlakyProxy(server.url, failures=1)
    try:
        later = Messenger(Client(proxy.url, alice.client.token, retries=0), Store(alice.store.path, alice.me),
                          alice.me)
        assert later.flush_until(time.monotonic() + 30) == 0, later.store.outbox_state(key)
    finally:
        proxy.stop()
    assert proxy.log == ["forwarded", "forwarded", "503", "forwarded"]  # /upload_url, the form, /send twice
    state = later.store.outbox_state(key)
    assert state["state"] == "sent"
    [uploaded] = later.store.outbox_files(key)
    assert len(stored_files(tmp_path)) == 1  # uploaded once
    [received] = bob.catch_up()
    assert received["message_id"] == state["message_id"] and received["text"] == "the report"
    assert [a["attachment_id"] for a in received["attachments"]] == [uploaded.attachment_id]
    bob.client.download(uploaded.attachment_id, tmp_path / "got.pdf")
    assert (tmp_path / "got.pdf").read_bytes() == document.read_bytes()


def test_an_upload_the_server_no_longer_takes_is_uploaded_again_once(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    photo = a_file(tmp_path, "p.gif", 1234)
    key = alice.store.queue("direct", bob.me, "", [outbox_file(photo)])
    # As if uploaded by an earlier attempt more than a day ago: the server has deleted it since.
    alice.store.uploaded(key, 0, str(uuid.uuid4()), 1234)
    assert alice.flush_until(time.monotonic() + 30) == 0
    assert alice.store.outbox_state(key)["state"] == "sent"
    [received] = bob.catch_up()
    assert [a["attachment_id"] for a in received["attachments"]] == [alice.store.outbox_files(key)[0].attachment_id]
    # A fresh upload refused fails the send at once (nothing better comes of trying again).
    key = alice.store.queue("direct", bob.me, "", [outbox_file(photo, content_type="text/html")])
    assert alice.flush() == 0
    assert alice.store.outbox_state(key)["state"] == "failed"


# --------------------------------------------------------------------------- the command line


def cli(home: Path, *args: str, api: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MESSAGING_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "messaging_client", "--api", api, *args], cwd=cwd or PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          start_new_session=True)


def test_send_file_and_download_on_the_command_line(server, tmp_path):
    home, api = tmp_path / "home", server.url
    here = tmp_path / "shir's folder"
    here.mkdir()
    for name in ("shir", "dan"):
        assert cli(home, "--profile", name, "register", name, api=api).returncode == 0
    shir = cli(home, "--profile", "shir", "whoami", api=api).stdout.split()[1]
    dan = cli(home, "--profile", "dan", "whoami", api=api).stdout.split()[1]
    (here / "notes.txt").write_text("milk, eggs\n")
    a_file(here, "cat.jpg", 150_000)

    sent = cli(home, "--profile", "shir", "send", dan, "the list", "--file", "notes.txt", api=api, cwd=here)
    assert sent.returncode == 0 and sent.stdout.startswith("sent ") and sent.stderr == "", sent
    only = cli(home, "--profile", "shir", "send", dan, "--file", "cat.jpg", api=api, cwd=here)
    assert only.returncode == 0 and only.stderr == "", only
    group = cli(home, "--profile", "shir", "group", "create", "g", api=api).stdout.split("group id ")[1].split()[0]
    assert cli(home, "--profile", "dan", "group", "join", group, api=api).returncode == 0
    to_group = cli(home, "--profile", "shir", "group", "send", group, "--file", str(here / "cat.jpg"), api=api)
    assert to_group.returncode == 0, to_group

    history = cli(home, "--profile", "dan", "history", shir, api=api).stdout.splitlines()
    assert [line.split("] ", 1)[1] for line in history] == ["shir: the list [file: notes.txt (11 B)]",
                                                            "shir: [file: cat.jpg (146.5 KiB)]"], history
    with_ids = cli(home, "--profile", "dan", "history", shir, "--ids", api=api).stdout.splitlines()
    short = with_ids[1].split("[file ")[1].split(":")[0]
    assert len(short) == 8, with_ids
    inbox = cli(home, "--profile", "dan", "inbox", api=api).stdout
    assert f"group {group}  1 unread  last: [1 file]" in inbox, inbox

    # Downloaded by the start of its id, into the folder it runs in, under the file's own name.
    there = tmp_path / "dan's folder"
    there.mkdir()
    got = cli(home, "--profile", "dan", "download", short, api=api, cwd=there)
    assert (got.returncode, got.stdout, got.stderr) == (0, "saved cat.jpg (146.5 KiB)\n", ""), got
    assert (there / "cat.jpg").read_bytes() == (here / "cat.jpg").read_bytes()
    again = cli(home, "--profile", "dan", "download", short, api=api, cwd=there)
    assert again.returncode == 1 and again.stdout == "" and again.stderr.count("\n") == 1, again
    assert "exists already" in again.stderr and "--out" in again.stderr
    out = cli(home, "--profile", "dan", "download", short, "--out", str(there / "kitty.jpg"), api=api)
    assert out.returncode == 0 and (there / "kitty.jpg").read_bytes() == (here / "cat.jpg").read_bytes(), out
    nobody = cli(home, "--profile", "dan", "download", str(uuid.uuid4()), api=api)
    assert nobody.returncode == 1 and nobody.stderr.count("\n") == 1 and "(AttachmentNotFound)" in nobody.stderr


def test_a_type_not_allowed_a_file_too_large_or_missing_is_one_line_and_a_non_zero_exit(server, tmp_path):
    home, api = tmp_path / "home", server.url
    assert cli(home, "register", "shir", api=api).returncode == 0
    me = cli(home, "whoami", api=api).stdout.split()[1]
    page = tmp_path / "page.html"
    page.write_text("<script>alert(1)</script>")
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as out:
        out.truncate(25 * MiB + 1)  # sparse: one past the server's default limit
    empty = tmp_path / "empty.txt"
    empty.touch()
    cases = {
        ("send", me, "--file", str(page)): "text/html is not a type this server accepts",
        ("send", me, "hi", "--file", str(huge)): "(PayloadTooLarge)",
        ("send", me, "--file", str(tmp_path / "nowhere.txt")): "nowhere.txt: no such file",
        ("send", me, "--file", str(empty)): "empty.txt is empty",
        ("send", me): "nothing to send",
    }
    for args, says in cases.items():
        out = cli(home, *args, api=api)
        assert out.returncode == 1 and out.stdout == "" and out.stderr.count("\n") == 1, (args, out)
        assert says in out.stderr and out.stderr.startswith("error: "), (args, out.stderr)
    assert "(BadRequest)" in cli(home, "send", me, "--file", str(page), api=api).stderr
    assert stored_files(tmp_path) == []  # refused before a byte went up


def test_the_content_type_comes_from_the_name():
    assert [content_type_of(n) for n in ("a.JPG", "b.wav", "c.heic", "d.txt", "e", "f.webp")] == \
        ["image/jpeg", "audio/wav", "image/heic", "text/plain", "application/octet-stream", "image/webp"]
