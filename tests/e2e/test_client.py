"""The Python client library and its command line over real HTTP: against
`make run`'s server on SQLite and on MariaDB + Redis (WebSocket sync), and
against `chalice local` itself (no WebSocket: long-poll). The outbox sends a
message exactly once when the client is killed between storing and sending,
and through a 503 storm that loses acknowledgements. What is retried follows
the contract's rule: a 500 is not (the message is marked failed), a 503 to a
send with its key is, a 429 is after Retry-After, a gateway's own 504 is."""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from messaging_client import ApiError, Client, Messenger, Store
from messaging_client.api import BadCredentials, HandleTaken, ServiceUnavailable, Unauthorized, User, UserNotFound
from messaging_client.store import NAMES_MAX_AGE_SECONDS
from tests.support.devserver import PROJECT_ROOT, DevServer, server_environment
from tests.support.flaky_proxy import FlakyProxy
from tests.support.scripted_api import Answer, ScriptedApi
from tests.support.servers import free_port, wait_until

AUTH_SECRET = "client-tests-secret-0123456789abcdef"


@pytest.fixture(params=["sqlite", "mysql+redis"])
def server(request, tmp_path: Path) -> Iterator[DevServer]:
    # Wrong passwords are counted per source address, here in the run's shared Redis: others' tests from
    # 127.0.0.1 must not use up this server's allowance (per handle, each test's handles are its own).
    settings: Dict[str, str] = {"AUTH_SECRET": AUTH_SECRET, "SIGN_IN_FAILURES_PER_SOURCE": "100000"}
    if request.param == "sqlite":
        settings["DATABASE_URL"] = f"sqlite:///{tmp_path / 'client.sqlite3'}"
    else:
        settings["DATABASE_URL"] = request.getfixturevalue("mysql_url")
        settings["REDIS_URL"] = request.getfixturevalue("session_redis").url
    running = DevServer(tmp_path / "server.log", **settings).start()
    yield running
    running.stop()


def user(api: str, name: str, tmp_path: Path) -> Messenger:
    client = Client(api, retries=2)
    registered = client.register(name)
    client.token = registered.token
    return Messenger(client, Store(tmp_path / f"{name}-{registered.user_id[:8]}.sqlite3", registered.user_id),
                     registered.user_id)


class Running:
    """A messenger's sync loop in a thread, collecting what it receives."""

    def __init__(self, messenger: Messenger, **options: Any) -> None:
        self.messenger, self.received = messenger, []
        self._thread = threading.Thread(target=messenger.run, args=(self.received.append,), kwargs=options,
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.messenger.stop()
        self._thread.join(30)


def test_the_library_sends_reads_and_keeps_conversations_with_unread_counts(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    key = alice.send(bob.me, "hello bob")
    assert alice.store.outbox_state(key)["state"] == "sent"
    group_id = alice.client.create_group("friends")
    assert alice.client.update_group(alice.me, group_id) and bob.client.update_group(bob.me, group_id)
    alice.send(group_id, "hello group", group=True)
    assert [m["text"] for m in bob.catch_up()] == ["hello bob", "hello group"]
    assert bob.catch_up() == []  # nothing twice
    unread = {c.id: c.unread for c in bob.store.conversations()}
    assert unread == {f"direct:{alice.me}": 1, f"group:{group_id}": 1}
    bob.store.mark_read(f"direct:{alice.me}")
    assert {c.id: c.unread for c in bob.store.conversations()}[f"direct:{alice.me}"] == 0
    # Alice's side: her own messages, from her outbox, in the same conversations.
    assert [m["text"] for m in alice.store.history(f"direct:{bob.me}")] == ["hello bob"]
    assert [m["outgoing"] for m in alice.store.history(f"group:{group_id}")] == [1]


def test_the_sync_loop_receives_live_over_the_websocket_and_fills_gaps_with_the_cursor(server, tmp_path,
                                                                                      monkeypatch):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    alice.send(bob.me, "before bob was online")
    dropped = _lose_the_first_frame(monkeypatch)
    running = Running(bob)
    try:
        wait_until(lambda: len(running.received) == 1, 10, "the catch-up read did not arrive")
        for i in range(5):
            alice.send(bob.me, f"live {i}")
        wait_until(lambda: len(running.received) == 6, 10, "the live messages did not arrive")
    finally:
        running.stop()
    assert dropped == [2]  # a frame came over the WebSocket, and its loss was filled by the next one's gap
    assert [m["seq"] for m in running.received] == list(range(1, 7))
    assert bob.store.cursor == 6 and len(bob.store.history(f"direct:{alice.me}")) == 6


def _lose_the_first_frame(monkeypatch) -> List[int]:
    """Every WebSocket the client opens loses the first message frame it
    receives, as if on the way; the seqs lost."""
    import websockets.sync.client

    real_connect, dropped = websockets.sync.client.connect, []

    def connect(*args: Any, **kwargs: Any):
        socket = real_connect(*args, **kwargs)
        real_recv = socket.recv

        def recv(timeout=None):
            data = real_recv(timeout=timeout)
            frame = json.loads(data)
            if not dropped and frame.get("type") == "message":
                dropped.append(frame["message"]["seq"])
                raise TimeoutError  # to the client, nothing came
            return data

        socket.recv = recv
        return socket

    monkeypatch.setattr(websockets.sync.client, "connect", connect)
    return dropped


def test_against_chalice_local_without_websocket_the_sync_loop_long_polls(tmp_path):
    port = free_port()
    env = server_environment(DATABASE_URL=f"sqlite:///{tmp_path / 'local.sqlite3'}", AUTH_SECRET=AUTH_SECRET)
    log = open(tmp_path / "chalice-local.log", "wb")
    proc = subprocess.Popen([str(PROJECT_ROOT / ".venv" / "bin" / "chalice"), "local", "--no-autoreload",
                             "--port", str(port)], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    api = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(api), 30, "chalice local did not start")
        alice, bob = user(api, "alice", tmp_path), user(api, "bob", tmp_path)
        assert bob.client.connect_ticket(bob.me).url is None  # no WebSocket offered here
        running = Running(bob)
        try:
            alice.send(bob.me, "by long-poll")
            wait_until(lambda: [m["text"] for m in running.received] == ["by long-poll"], 10,
                       "the long-poll did not deliver")
        finally:
            running.stop()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        log.close()


def _answers(api: str) -> bool:
    try:
        return Client(api, retries=0).health().get("database") == "ok"
    except Exception:
        return False


_QUEUE_AND_HANG = """
import sys, time
from pathlib import Path
from messaging_client import Client, Messenger, Store
api, token, me, to, store = sys.argv[1:6]
messenger = Messenger(Client(api, token), Store(Path(store), me), me)
messenger.store.queue("direct", to, "written before the crash")
print("stored", flush=True)
time.sleep(60)  # killed here: stored, never sent
"""


def test_a_client_killed_between_storing_and_sending_delivers_once_when_started_again(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    store_path = tmp_path / "alice-crash.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", _QUEUE_AND_HANG, server.url, alice.client.token, alice.me, bob.me,
                              str(store_path)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "stored"
    child.kill()  # SIGKILL: no cleanup, no flush
    child.wait(10)
    assert bob.catch_up() == []  # nothing went out
    restarted = Messenger(Client(server.url, alice.client.token), Store(store_path, alice.me), alice.me)
    assert restarted.flush() == 0
    assert restarted.flush() == 0  # and again: nothing left to send, nothing sent twice
    assert [m["text"] for m in bob.catch_up()] == ["written before the crash"]


def test_through_a_503_storm_that_loses_acknowledgements_each_message_arrives_once(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    proxy = FlakyProxy(server.url, failures=4)
    try:
        flaky = Messenger(Client(proxy.url, alice.client.token, retries=0), alice.store, alice.me)
        keys = [flaky.store.queue("direct", bob.me, f"storm {i}") for i in range(3)]
        assert flaky.flush_until(time.monotonic() + 30) == 0, [flaky.store.outbox_state(k) for k in keys]
    finally:
        proxy.stop()
    assert {"503", "dropped"} <= set(proxy.log), proxy.log  # it really failed, after forwarding
    received = bob.catch_up()
    assert [m["text"] for m in received] == ["storm 0", "storm 1", "storm 2"]
    assert [flaky.store.outbox_state(k)["message_id"] for k in keys] == [m["message_id"] for m in received]


# --------------------------------------------------------------------------- what is retried: the contract's rule

BUG = {"Code": "InternalServerError", "Message": "internal error, request id r-500"}


def test_a_send_answered_500_is_marked_failed_after_one_attempt_not_retried_forever(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    bug = ScriptedApi(default=Answer(500, BUG))  # an API that answers every call with a bug's 500
    try:
        broken = Messenger(Client(bug.url, alice.client.token), alice.store, alice.me)
        key = broken.send(bob.me, "meets a bug")
        assert broken.store.outbox_state(key) == {"state": "failed", "attempts": 0, "message_id": None,
                                                  "error": "InternalServerError: internal error, request id r-500"}
        assert broken.flush_until(time.monotonic() + 30) == 0  # nothing left to try again
        with pytest.raises(ApiError) as refused:  # a send safe to repeat, with retries to spare: still once
            broken.client.send(alice.me, bob.me, "with a key", client_message_id=f"c-{uuid.uuid4()}")
        assert (refused.value.code, refused.value.retry) == ("InternalServerError", "never")
        assert [e.status for e in bug.log] == [500, 500]  # one attempt each

        # The command line says so at once, in the line a refused send gets (not "not sent yet" after 15 s).
        home = tmp_path / "home"
        assert cli(home, "register", "shir", api=server.url).returncode == 0
        sent = cli(home, "send", bob.me, "hi", api=bug.url)
        assert (sent.returncode, sent.stdout) == (1, ""), sent
        assert sent.stderr == "error: not sent: internal error, request id r-500 (InternalServerError)\n"
        assert [e.path for e in bug.log[2:]] == ["/send"]
        # The sync loop's reads follow the same rule: `watch` ends with the error instead of retrying forever.
        watch = cli(home, "watch", api=bug.url)
        assert watch.returncode == 1 and watch.stdout.startswith("watching as shir"), watch
        assert watch.stderr == "error: internal error, request id r-500 (InternalServerError)\n", watch
    finally:
        bug.stop()
    assert bob.catch_up() == []


def test_a_503_to_a_send_with_its_key_is_retried_and_delivered_once(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    with_key, without_key = FlakyProxy(server.url, failures=1), FlakyProxy(server.url, failures=1)
    try:
        sent = Client(with_key.url, alice.client.token, retries=2).send(
            alice.me, bob.me, "through a 503", client_message_id=f"c-{uuid.uuid4()}")
        assert with_key.log == ["503", "forwarded"]  # done at the first attempt, acknowledged at the second
        assert sent.duplicate
        with pytest.raises(ServiceUnavailable):  # the same answer to a send without a key: it may have been done
            Client(without_key.url, alice.client.token, retries=2).send(alice.me, bob.me, "through a 503, no key")
        assert without_key.log == ["503"]  # so it is not sent again (it was done: a retry would have doubled it)
    finally:
        with_key.stop()
        without_key.stop()
    received = bob.catch_up()
    assert [m["text"] for m in received] == ["through a 503", "through a 503, no key"]
    assert received[0]["message_id"] == sent.message_id


def test_a_429_is_retried_after_retry_after_by_the_library_and_by_the_outbox(tmp_path, session_redis):
    limited = DevServer(tmp_path / "limited.log", DATABASE_URL=f"sqlite:///{tmp_path / 'limited.sqlite3'}",
                        AUTH_SECRET=AUTH_SECRET, REDIS_URL=session_redis.url,
                        RATE_LIMIT_SENDS_PER_MINUTE="60").start()  # a burst of 60, then one a second
    try:
        alice, bob = user(limited.url, "alice", tmp_path), user(limited.url, "bob", tmp_path)
        wire = ScriptedApi(upstream=limited.url)  # relays the API's own answers and records them
        try:
            client = Client(wire.url, alice.client.token, retries=2)
            texts: List[str] = []
            while not any(e.status == 429 for e in wire.log):  # sends without a key: 429 means nothing was done
                assert len(texts) < 300, "never rate limited"
                texts.append(f"m{len(texts)}")
                client.send(alice.me, bob.me, texts[-1])
            _assert_retried_after_retry_after(wire.sent())

            outbox = Messenger(Client(wire.url, alice.client.token), alice.store, alice.me)
            limited_at = len(wire.log)
            while True:  # the bucket is empty now; a token may come back in between, hence a loop
                assert len(texts) < 300, "never rate limited"
                texts.append(f"m{len(texts)}")
                key = outbox.send(bob.me, texts[-1])
                if outbox.store.outbox_state(key)["state"] == "pending":
                    break
                limited_at = len(wire.log)
            state = outbox.store.outbox_state(key)
            assert state["attempts"] == 1 and state["error"].startswith("RateLimited: "), state
            assert outbox.flush_until(time.monotonic() + 30) == 0
            assert outbox.store.outbox_state(key)["state"] == "sent"
            _assert_retried_after_retry_after(wire.sent()[limited_at:])
        finally:
            wire.stop()
        assert [m["text"] for m in bob.catch_up()] == texts  # each once
    finally:
        limited.stop()


def _assert_retried_after_retry_after(sends) -> None:
    """The first 429 in `sends` (the API's own, with Retry-After) is followed by
    the same send again, no sooner than Retry-After, and the API took it."""
    first = next(i for i, e in enumerate(sends) if e.status == 429)
    refused, again = sends[first], sends[first + 1]
    assert not refused.scripted and refused.retry_after is not None and int(refused.retry_after) >= 1, refused
    assert again.received - refused.answered >= int(refused.retry_after), (refused, again)
    assert again.status == 201, again


def test_a_gateways_own_504_is_retried_with_the_key_and_any_other_unknown_answer_is_not(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    gateway = ScriptedApi(upstream=server.url, script=[Answer(504, {"message": "Endpoint request timed out"})])
    try:  # API Gateway's own bodies have no Code: a 504 after the API did the send...
        outbox = Messenger(Client(gateway.url, alice.client.token), alice.store, alice.me)
        timed_out = outbox.store.queue("direct", bob.me, "the gateway timed out")
        assert outbox.flush_until(time.monotonic() + 30) == 0
        # ...and a 403 of its own, before the API saw anything.
        gateway.script.append(Answer(403, {"message": "Missing Authentication Token"}, forward=False))
        refused = outbox.send(bob.me, "the gateway refused")
    finally:
        gateway.stop()
    assert [(e.status, e.scripted) for e in gateway.sent()] == [(504, True), (200, False), (403, True)]
    assert outbox.store.outbox_state(timed_out)["state"] == "sent"
    assert outbox.store.outbox_state(refused) == {"state": "failed", "attempts": 0, "message_id": None,
                                                  "error": "HTTP403: Missing Authentication Token"}
    assert [m["text"] for m in bob.catch_up()] == ["the gateway timed out"]  # once


# --------------------------------------------------------------------------- the command line


def cli(home: Path, *args: str, api: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    """The command line in a session of its own: no terminal to ask a password on, `stdin` its only input."""
    return subprocess.run([sys.executable, "-m", "messaging_client", "--api", api, *args], cwd=PROJECT_ROOT,
                          env={**os.environ, "MESSAGING_HOME": str(home)}, capture_output=True, text=True, timeout=60,
                          input=stdin or "", start_new_session=True)


def test_the_command_line_registers_sends_groups_blocks_and_lists_the_inbox(server, tmp_path):
    home, api = tmp_path / "home", server.url
    out = cli(home, "--profile", "shir", "register", "shir", api=api)
    assert out.returncode == 0 and out.stdout.startswith("registered shir: user id "), out
    assert cli(home, "--profile", "dan", "register", "dan", api=api).returncode == 0
    for name in ("shir", "dan"):
        profile = home / f"{name}.json"
        assert stat.S_IMODE(profile.stat().st_mode) == 0o600  # it holds the token
    shir = cli(home, "--profile", "shir", "whoami", api=api).stdout.split()[1]
    dan = cli(home, "--profile", "dan", "whoami", api=api).stdout.split()[1]
    sent = cli(home, "--profile", "shir", "send", dan, "hi", "dan", api=api)
    assert sent.returncode == 0 and sent.stdout.startswith("sent "), sent
    created = cli(home, "--profile", "shir", "group", "create", "bambis", api=api)
    group = created.stdout.split("group id ")[1].split()[0]
    assert cli(home, "--profile", "dan", "group", "join", group, api=api).stdout.strip() == f"joined group {group}"
    assert cli(home, "--profile", "shir", "group", "send", group, "hello_group", api=api).returncode == 0
    inbox = cli(home, "--profile", "dan", "inbox", api=api).stdout.splitlines()
    assert sorted(inbox) == sorted([f"shir (user {shir})  1 unread  last: hi dan",
                                    f"group {group}  1 unread  last: hello_group"]), inbox
    history = cli(home, "--profile", "dan", "history", shir, api=api).stdout.splitlines()
    assert len(history) == 1 and history[0].endswith("] shir: hi dan"), history
    assert f"shir (user {shir})  0 unread" in cli(home, "--profile", "dan", "inbox", api=api).stdout
    assert cli(home, "--profile", "dan", "block", shir, api=api).stdout.strip() == f"blocked {shir}"
    blocked = cli(home, "--profile", "shir", "send", dan, "still there?", api=api)
    assert (blocked.returncode, blocked.stdout) == (1, "")
    assert blocked.stderr == "error: not sent: the receiving user has blocked the sending user (Blocked)\n"


def test_the_command_line_says_what_is_wrong_in_one_line_and_exits_non_zero(server, tmp_path):
    home, api = tmp_path / "home", server.url
    missing = cli(home, "inbox", api=api)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "register NAME" in missing.stderr
    assert cli(home, "register", "shir", api=api).returncode == 0
    nobody = "00000000-0000-4000-8000-000000000000"
    cases = {
        ("send", nobody, "hi"): "(UserNotFound)",
        ("group", "send", nobody, "hi"): "(GroupNotFound)",
        ("group", "join", "not-an-id"): "(BadRequest)",
    }
    group = cli(home, "group", "create", "mine", api=api).stdout.split("group id ")[1].split()[0]
    assert cli(home, "group", "leave", group, api=api).returncode == 0
    cases[("group", "send", group, "hi")] = "(NotAMember)"
    for args, code in cases.items():
        out = cli(home, *args, api=api)
        assert out.returncode != 0 and out.stdout == "" and out.stderr.count("\n") == 1, (args, out)
        assert code in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    down = cli(home, "inbox", api=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1 and down.stderr.count("\n") == 1 and "is the server running" in down.stderr, down


def test_watch_prints_messages_as_they_arrive(server, tmp_path):
    home, api = tmp_path / "home", server.url
    assert cli(home, "--profile", "dan", "register", "dan", api=api).returncode == 0
    dan = cli(home, "--profile", "dan", "whoami", api=api).stdout.split()[1]
    alice = user(api, "alice", tmp_path)
    watcher = subprocess.Popen([sys.executable, "-m", "messaging_client", "--api", api, "--profile", "dan", "watch"],
                               cwd=PROJECT_ROOT, env={**os.environ, "MESSAGING_HOME": str(home)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: List[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watcher.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(line.startswith("watching as dan") for line in lines), 20, "watch did not start")
        alice.send(dan, "are you watching?")
        wait_until(lambda: any(line.rstrip().endswith("] alice: are you watching?") for line in lines), 10,
                   f"watch did not print the message: {lines}")
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(10)


def test_chat_sends_what_is_typed_and_shows_what_arrives(server, tmp_path):
    home, api = tmp_path / "home", server.url
    assert cli(home, "--profile", "dan", "register", "dan", api=api).returncode == 0
    dan = cli(home, "--profile", "dan", "whoami", api=api).stdout.split()[1]
    alice = user(api, "alice", tmp_path)
    alice.send(dan, "earlier")
    chat = subprocess.Popen([sys.executable, "-m", "messaging_client", "--api", api, "--profile", "dan", "chat",
                             alice.me], cwd=PROJECT_ROOT, env={**os.environ, "MESSAGING_HOME": str(home)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: List[str] = []
    threading.Thread(target=lambda: lines.extend(iter(chat.stdout.readline, "")), daemon=True).start()
    try:
        wait_until(lambda: any("type a message" in line for line in lines), 20, f"chat did not start: {lines}")
        assert any(line.rstrip().endswith("] alice: earlier") for line in lines), lines  # the history
        chat.stdin.write("hi alice\n")
        chat.stdin.flush()
        wait_until(lambda: any(line.startswith("sent ") for line in lines), 10, f"not sent: {lines}")
        assert [m["text"] for m in alice.catch_up()] == ["hi alice"]
        alice.send(dan, "live reply")
        wait_until(lambda: any(line.rstrip().endswith("] alice: live reply") for line in lines), 10,
                   f"the reply did not show: {lines}")
        chat.stdin.write("/quit\n")
        chat.stdin.flush()
        assert chat.wait(10) == 0
    finally:
        if chat.poll() is None:
            chat.kill()


def test_a_long_poll_refused_for_too_many_waits_pauses_before_reading_again(tmp_path):
    """The user's other device holds the only waiting read allowed: the
    client's next long-poll is answered at once with X-Wait-Refused, and the
    sync loop then pauses as the contract says instead of polling without
    rest; a message still arrives with its next read."""
    from messaging_client import contract

    server = DevServer(tmp_path / "server.log", AUTH_SECRET=AUTH_SECRET, LONG_POLL_MAX_PER_USER="1",
                       DATABASE_URL=f"sqlite:///{tmp_path / 'client.sqlite3'}").start()
    try:
        alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)

        def hold_the_wait() -> None:
            """The other device's long-poll; again when the probe below held the one slot first."""
            for _ in range(1000):
                if not bob.client.read_messages(bob.me, after=0, wait=20).wait_refused:
                    return

        other_device = threading.Thread(target=hold_the_wait, daemon=True)
        other_device.start()
        wait_until(lambda: bob.client.read_messages(bob.me, after=0, wait=1).wait_refused == "per-user", 10,
                   "the other device's read did not wait")
        started = time.monotonic()
        assert bob.catch_up(wait=contract.MAX_WAIT_SECONDS) == []
        assert time.monotonic() - started >= contract.WAIT_REFUSED_PAUSE_SECONDS
        reads = server.log().count("/read_messages 200")
        alice.send(bob.me, "after the pause")
        other_device.join(30)
        assert [m["text"] for m in bob.catch_up(wait=contract.MAX_WAIT_SECONDS)] == ["after the pause"]
        assert server.log().count("/read_messages 200") <= reads + 2
    finally:
        server.stop()


# --------------------------------------------------------------------------- accounts, sessions and people

PASSWORD = "correct horse 7 battery"
NEW_PASSWORD = "staple 9 orbit lantern"
LINK_CODE = re.compile(r"link code: ([0-9A-Z]{5}-[0-9A-Z]{5}) \(works once, for 5 minutes\)")
SESSION_LINE = r"{mark} [0-9a-f-]{{36}}  since \d{{4}}-\d\d-\d\d \d\d:\d\d  {device}"


def handle(name: str) -> str:
    """A handle of this test's own (MariaDB's database is the run's: handles stay taken between tests)."""
    return f"{name}_{uuid.uuid4().hex[:8]}"


def _user_id(out: subprocess.CompletedProcess) -> str:
    """The id a `register`, `login` or `link` printed."""
    assert out.returncode == 0 and out.stderr == "", out
    return out.stdout.split("user id ")[1].split()[0]


def _one_line_error(out: subprocess.CompletedProcess) -> str:
    """A refusal as the command line prints it: nothing on stdout, one line on stderr, a non-zero exit."""
    assert out.returncode != 0 and out.stdout == "" and out.stderr.count("\n") == 1, out
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr


def _register(home: Path, profile: str, name: str, api: str, *, with_handle: Optional[str] = None,
              password: str = PASSWORD) -> str:
    """A user registered on the command line (with a handle and password when `with_handle`); its id."""
    args = ["--handle", with_handle, "--password-stdin"] if with_handle else []
    return _user_id(cli(home, "--profile", profile, "register", name, *args, api=api, stdin=f"{password}\n"))


def test_the_library_signs_in_lists_and_signs_out_sessions_changes_and_finds_accounts(server, tmp_path):
    mine = handle("shir")
    first = Client(server.url, retries=2)
    shir = first.register("Shir", handle=mine.upper(), password=PASSWORD, device_name="desk")
    assert (shir.user_name, shir.handle) == ("Shir", mine) and shir.session_id  # any case, answered lower case
    first.token = shir.token
    with pytest.raises(HandleTaken):
        Client(server.url).register("another", handle=mine)
    with pytest.raises(BadCredentials):
        Client(server.url).login(mine, "not the password")
    second = Client(server.url)
    laptop = second.login(f"@{mine}", PASSWORD, device_name="laptop")
    assert laptop.user_id == shir.user_id and laptop.session_id != shir.session_id
    second.token = laptop.token
    assert [(s.session_id, s.device_name, s.current) for s in first.sessions()] == [
        (shir.session_id, "desk", True), (laptop.session_id, "laptop", False)]

    # People: by handle, and by ids in batches of 100 (unknown ones left out).
    assert first.find_user(f"@{mine}") == User(shir.user_id, "Shir", mine)
    with pytest.raises(UserNotFound):
        first.find_user(handle("nobody"))
    strangers = [str(uuid.uuid4()) for _ in range(150)]
    assert first.users([*strangers[:120], shir.user_id, *strangers[120:]]) == [User(shir.user_id, "Shir", mine)]

    # The account: a name needs no password; a handle or a password needs the current one.
    assert first.update_account(user_name="Shir K") == User(shir.user_id, "Shir K", mine)
    with pytest.raises(ApiError) as refused:
        first.update_account(handle=handle("shir"))
    assert refused.value.code == "BadRequest" and refused.value.message.startswith("current_password:")
    other = handle("shir")
    assert first.update_account(handle=other, current_password=PASSWORD).handle == other
    first.update_account(password=NEW_PASSWORD, current_password=PASSWORD)  # signs the laptop out
    with pytest.raises(Unauthorized):
        second.sessions()

    # A link code signs a device in once; logout everywhere signs every device out.
    code = first.link_code()
    assert code.expires_in == 300
    third = Client(server.url)
    linked = third.link(code.code.lower(), device_name="tablet")
    assert linked.user_id == shir.user_id
    with pytest.raises(BadCredentials):
        Client(server.url).link(code.code)
    third.token = linked.token
    assert len(third.sessions()) == 2
    assert third.logout(everywhere=True) == 2
    for signed_out in (first, third):
        with pytest.raises(Unauthorized):
            signed_out.sessions()


def test_a_message_queued_on_a_signed_out_device_waits_for_its_sign_in_and_goes_once(server, tmp_path):
    alice, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    mine = handle("alice")
    alice.client.update_account(handle=mine, password=PASSWORD)
    assert alice.client.logout() == 1
    with pytest.raises(Unauthorized):
        alice.send(bob.me, "written while signed out")
    [pending] = alice.store.pending()
    assert alice.store.outbox_state(pending.client_message_id)["state"] == "pending"  # kept, not failed
    alice.client.token = Client(server.url).login(mine, PASSWORD).token
    assert alice.flush() == 0
    assert [m["text"] for m in bob.catch_up()] == ["written while signed out"]


def test_a_second_device_logs_in_with_handle_and_password_and_sends_as_the_same_user(server, tmp_path):
    home, api, mine = tmp_path / "home", server.url, handle("shir")
    registered = cli(home, "--profile", "shir", "register", "shir", "--handle", mine.upper(), "--password-stdin",
                     api=api, stdin=f"{PASSWORD}\n")
    shir = _user_id(registered)
    assert registered.stdout.startswith(f"registered shir (@{mine}): user id "), registered
    dan = _register(home, "dan", "dan", api)
    laptop = cli(home, "--profile", "laptop", "login", mine, "--password-stdin", "--device", "laptop", api=api,
                 stdin=f"{PASSWORD}\n")
    assert _user_id(laptop) == shir and laptop.stdout.startswith(f"signed in as shir (@{mine}): user id "), laptop
    assert cli(home, "--profile", "laptop", "whoami", api=api).stdout == f"shir {shir} @{mine}\n"
    assert stat.S_IMODE((home / "laptop.json").stat().st_mode) == 0o600

    sent = cli(home, "--profile", "laptop", "send", dan, "from the laptop", api=api)
    assert sent.returncode == 0 and sent.stdout.startswith("sent "), sent
    inbox = cli(home, "--profile", "dan", "inbox", api=api).stdout
    assert inbox == f"shir (@{mine})  1 unread  last: from the laptop\n", inbox
    [line] = cli(home, "--profile", "dan", "history", f"@{mine}", api=api).stdout.splitlines()
    assert line.endswith(f"] shir (@{mine}): from the laptop"), line
    # The first device is signed in still, as the same user.
    assert cli(home, "--profile", "shir", "send", dan, "from the desk", api=api).returncode == 0
    [_, line] = cli(home, "--profile", "dan", "history", shir, api=api).stdout.splitlines()
    assert line.endswith(f"] shir (@{mine}): from the desk"), line

    # The password is in no file of the client's (profiles, stores and their journals) nor in the server's log.
    files = [f for f in home.iterdir() if f.is_file()]
    assert {f.name for f in files} >= {"shir.json", "laptop.json", "shir.sqlite3", "laptop.sqlite3"}
    for f in files:
        assert PASSWORD.encode() not in f.read_bytes(), f
    assert "password" not in json.loads((home / "laptop.json").read_text())
    assert "/login 200" in server.log() and PASSWORD not in server.log()


def test_a_link_code_signs_a_new_profile_in_once(server, tmp_path):
    home, api = tmp_path / "home", server.url
    shir = _register(home, "shir", "shir", api)  # no handle, no password: link codes are how it signs in elsewhere
    shown = cli(home, "--profile", "shir", "link-code", api=api)
    assert shown.returncode == 0 and shown.stderr == "", shown
    match = LINK_CODE.fullmatch(shown.stdout.splitlines()[0])
    assert match, shown.stdout
    code = match.group(1)
    assert shown.stdout.splitlines()[1] == f"on the new device: python -m messaging_client --profile NAME link {code}"
    linked = cli(home, "--profile", "tablet", "link", code, "--device", "tablet", api=api)
    assert _user_id(linked) == shir and linked.stdout.startswith("signed in as shir: user id "), linked
    assert cli(home, "--profile", "tablet", "whoami", api=api).stdout == f"shir {shir}\n"
    assert cli(home, "--profile", "tablet", "send", shir, "a note from the tablet", api=api).returncode == 0
    [line] = cli(home, "--profile", "shir", "history", shir, api=api).stdout.splitlines()
    assert line.endswith("] you: a note from the tablet"), line
    devices = cli(home, "--profile", "tablet", "sessions", api=api).stdout.splitlines()
    assert len(devices) == 2 and re.fullmatch(SESSION_LINE.format(mark=r"\*", device=r"tablet  \(this device\)"),
                                              devices[1]), devices

    again = cli(home, "--profile", "other", "link", code, api=api)
    assert _one_line_error(again) == ("error: the link code is wrong, used or expired: show a new one on a"
                                      " signed-in device (BadCredentials)\n")
    assert not (home / "other.json").exists()


def test_sessions_are_listed_and_a_revoked_profile_says_it_was_signed_out(server, tmp_path):
    home, api, mine = tmp_path / "home", server.url, handle("shir")
    shir = _user_id(cli(home, "--profile", "shir", "register", "shir", "--handle", mine, "--password-stdin",
                        "--device", "desk", api=api, stdin=f"{PASSWORD}\n"))

    def login() -> None:
        out = cli(home, "--profile", "laptop", "login", mine, "--password-stdin", "--device", "laptop", api=api,
                  stdin=f"{PASSWORD}\n")
        assert _user_id(out) == shir

    login()
    listed = cli(home, "--profile", "shir", "sessions", api=api).stdout.splitlines()
    assert len(listed) == 2, listed
    assert re.fullmatch(SESSION_LINE.format(mark=r"\*", device=r"desk  \(this device\)"), listed[0]), listed
    assert re.fullmatch(SESSION_LINE.format(mark=" ", device="laptop"), listed[1]), listed
    laptop_session = listed[1].split()[0]
    assert json.loads((home / "laptop.json").read_text())["session_id"] == laptop_session

    out = cli(home, "--profile", "shir", "logout", laptop_session[:8], api=api)  # the start of an id will do
    assert out.stdout == f"signed out session {laptop_session}\n", out
    signed_out = ("error: profile laptop was signed out: sign in again with `python -m messaging_client --profile"
                  f" laptop login {mine}`, or `python -m messaging_client --profile laptop link CODE` with a code"
                  " from `link-code` on a signed-in device (Unauthorized)\n")
    assert _one_line_error(cli(home, "--profile", "laptop", "inbox", api=api)) == signed_out
    assert _one_line_error(cli(home, "--profile", "laptop", "send", shir, "hi", api=api)) == signed_out
    assert len(cli(home, "--profile", "shir", "sessions", api=api).stdout.splitlines()) == 1

    login()  # into the same profile: the same store, a new token; the message queued above goes out now
    assert cli(home, "--profile", "laptop", "inbox", api=api).returncode == 0
    [line] = cli(home, "--profile", "shir", "history", shir, api=api).stdout.splitlines()
    assert line.endswith("] you: hi"), line  # a note to self, sent from the laptop

    out = cli(home, "--profile", "laptop", "logout", api=api)  # this device: the profile forgets its token
    assert out.returncode == 0 and out.stdout.startswith("signed out this device (profile laptop); sign in again")
    assert json.loads((home / "laptop.json").read_text())["token"] is None
    assert _one_line_error(cli(home, "--profile", "laptop", "inbox", api=api)).startswith(
        "error: profile laptop is signed out: sign in again with")

    login()
    out = cli(home, "--profile", "shir", "logout", "--all", api=api)
    assert out.stdout.startswith("signed out this device and 1 other device (profile shir);"), out
    for profile in ("shir", "laptop"):
        assert "signed out" in _one_line_error(cli(home, "--profile", profile, "sessions", api=api))

    # A profile keeps one account: another's sign-in is refused there, and leaves no session behind.
    dans = handle("dan")
    _register(home, "dan", "dan", api, with_handle=dans)
    refused = cli(home, "--profile", "laptop", "login", dans, "--password-stdin", api=api, stdin=f"{PASSWORD}\n")
    assert _one_line_error(refused) == (f"error: profile laptop holds shir's account (user id {shir}), not dan's:"
                                        " sign in with --profile NAME (a new profile) instead\n")
    assert len(cli(home, "--profile", "dan", "sessions", api=api).stdout.splitlines()) == 1
    assert "already holds dan's account" in _one_line_error(cli(home, "--profile", "dan", "register", "x", api=api))


def test_a_wrong_password_is_one_clear_line_and_a_non_zero_exit(server, tmp_path):
    home, api, mine = tmp_path / "home", server.url, handle("shir")
    _register(home, "shir", "shir", api, with_handle=mine)

    def login(*args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
        return cli(home, "--profile", "laptop", "login", *args, api=api, stdin=stdin)

    wrong = "error: the handle or the password is wrong (BadCredentials)\n"
    assert _one_line_error(login(mine, "--password-stdin", stdin="not the password\n")) == wrong
    assert _one_line_error(login(handle("nobody"), "--password-stdin", stdin=f"{PASSWORD}\n")) == wrong  # the same
    assert not (home / "laptop.json").exists()
    # No terminal to ask on, and no --password-stdin: it says so (a password is never an argument).
    assert _one_line_error(login(mine)) == ("error: no terminal to ask for the password on: give it with"
                                            " --password-stdin\n")
    assert login(mine, PASSWORD).returncode == 2  # argparse's usage: no such argument
    # The account's own changes check the current password the same way.
    assert _one_line_error(cli(home, "--profile", "shir", "account", "password", "--password-stdin", api=api,
                               stdin=f"not the password\n{NEW_PASSWORD}\n")) == (
        "error: current_password: the password is wrong (BadCredentials)\n")
    assert _one_line_error(cli(home, "--profile", "shir", "account", "delete", "--yes", "--password-stdin", api=api,
                               stdin="not the password\n")) == (
        "error: password: the password is wrong (BadCredentials)\n")
    changed = cli(home, "--profile", "shir", "account", "password", "--password-stdin", api=api,
                  stdin=f"{PASSWORD}\n{NEW_PASSWORD}\n")
    assert changed.stdout == "password changed; your other devices were signed out\n", changed
    assert _one_line_error(login(mine, "--password-stdin", stdin=f"{PASSWORD}\n")) == wrong  # the old one no longer
    assert _user_id(login(mine, "--password-stdin", stdin=f"{NEW_PASSWORD}\n"))
    assert PASSWORD not in server.log() and NEW_PASSWORD not in server.log()


def test_too_many_wrong_passwords_are_refused_at_once_with_how_long_to_wait(tmp_path):
    limited = DevServer(tmp_path / "limited.log", DATABASE_URL=f"sqlite:///{tmp_path / 'limited.sqlite3'}",
                        AUTH_SECRET=AUTH_SECRET, SIGN_IN_FAILURES_PER_HANDLE="1").start()
    try:
        home, api = tmp_path / "home", limited.url
        _register(home, "default", "shir", api, with_handle="shir")
        assert "(BadCredentials)" in _one_line_error(cli(home, "--profile", "laptop", "login", "shir",
                                                         "--password-stdin", api=api, stdin="not the password\n"))
        started = time.monotonic()
        refused = cli(home, "--profile", "laptop", "login", "shir", "--password-stdin", api=api,
                      stdin=f"{PASSWORD}\n")  # the right one too, until the window passes
        assert _one_line_error(refused) == ("error: too many sign-in failures: at most 1 per 15 minutes;"
                                            " try again in 15 minutes (RateLimited)\n")
        assert time.monotonic() - started < 10  # neither waited out nor retried by the client
        assert limited.log().count("/login 429") == 1
    finally:
        limited.stop()


def test_find_a_handle_and_send_to_it(server, tmp_path):
    home, api, dans, shirs = tmp_path / "home", server.url, handle("dan"), handle("shir")
    out = cli(home, "--profile", "dan", "register", "Dan", "--handle", dans, "--password-stdin", api=api,
              stdin="\n")  # a handle to be found by and no password: other devices sign in with link codes
    dan = _user_id(out)
    assert out.stdout.splitlines()[1] == "no password: sign in on other devices with a code from `link-code`"
    _register(home, "shir", "shir", api, with_handle=shirs)
    assert cli(home, "--profile", "shir", "find", f"@{dans}", api=api).stdout == f"Dan (@{dans}): user id {dan}\n"
    assert cli(home, "--profile", "shir", "find", dans.upper(), api=api).stdout == f"Dan (@{dans}): user id {dan}\n"
    nobody = handle("nobody")
    assert _one_line_error(cli(home, "--profile", "shir", "find", nobody, api=api)) == (
        f"error: handle: nobody has the handle {nobody} (UserNotFound)\n")
    for to, text in ((f"@{dans}", "to the handle"), (dans, "to the bare handle"), (dan, "to the id")):
        sent = cli(home, "--profile", "shir", "send", to, text, api=api)
        assert sent.returncode == 0 and sent.stdout.startswith("sent "), sent
    assert "(UserNotFound)" in _one_line_error(cli(home, "--profile", "shir", "send", f"@{nobody}", "hi", api=api))
    assert "neither a user id nor a handle" in _one_line_error(cli(home, "--profile", "shir", "send", "6f0c-12", "hi",
                                                                   api=api))
    inbox = cli(home, "--profile", "dan", "inbox", api=api).stdout
    assert inbox == f"shir (@{shirs})  3 unread  last: to the id\n", inbox
    history = cli(home, "--profile", "dan", "history", f"@{shirs}", api=api).stdout.splitlines()
    assert [line.split("] ", 1)[1] for line in history] == [f"shir (@{shirs}): to the handle",
                                                            f"shir (@{shirs}): to the bare handle",
                                                            f"shir (@{shirs}): to the id"]
    assert cli(home, "--profile", "dan", "block", f"@{shirs}", api=api).stdout == f"blocked @{shirs}\n"
    assert "(Blocked)" in _one_line_error(cli(home, "--profile", "shir", "send", f"@{dans}", "still?", api=api))


def test_the_inbox_shows_names_from_users_and_a_deleted_sender_as_a_deleted_account(server, tmp_path):
    home, api, shirs = tmp_path / "home", server.url, handle("shir")
    dan = _register(home, "dan", "dan", api)
    shir = _register(home, "shir", "Shir", api, with_handle=shirs)
    eve = _register(home, "eve", "Eve", api)
    assert cli(home, "--profile", "shir", "send", dan, "from shir", api=api).returncode == 0
    assert cli(home, "--profile", "eve", "send", dan, "from eve", api=api).returncode == 0
    assert "confirm with --yes" in _one_line_error(cli(home, "--profile", "eve", "account", "delete", api=api))
    deleted = cli(home, "--profile", "eve", "account", "delete", "--yes", api=api)
    assert deleted.stdout == "deleted Eve's account; profile eve and its local store are removed\n", deleted
    assert not (home / "eve.json").exists() and not (home / "eve.sqlite3").exists()

    assert "/users" not in server.log()
    inbox = cli(home, "--profile", "dan", "inbox", api=api).stdout.splitlines()
    assert sorted(inbox) == sorted([f"Shir (@{shirs})  1 unread  last: from shir",
                                    f"deleted account (user {eve})  1 unread  last: from eve"]), inbox
    [line] = cli(home, "--profile", "dan", "history", eve, api=api).stdout.splitlines()
    assert line.endswith("] deleted account: from eve"), line
    assert server.log().count("POST /users 200") == 1  # asked once, then remembered

    # Remembered for a day: Shir deletes her account, and dan sees her name until it is a day old.
    assert cli(home, "--profile", "shir", "account", "delete", "--yes", "--password-stdin", api=api,
               stdin=f"{PASSWORD}\n").returncode == 0
    assert f"Shir (@{shirs})  1 unread" in cli(home, "--profile", "dan", "inbox", api=api).stdout
    assert server.log().count("POST /users 200") == 1
    store = Store(home / "dan.sqlite3", dan)
    try:  # what dan's store had of her a day ago
        store.remember_names([shir], [User(shir, "Shir", shirs)], now=time.time() - NAMES_MAX_AGE_SECONDS - 60)
    finally:
        store.close()
    assert f"deleted account (user {shir})  1 unread" in cli(home, "--profile", "dan", "inbox", api=api).stdout
    assert server.log().count("POST /users 200") == 2
