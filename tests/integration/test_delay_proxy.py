"""bench/delayproxy.c, the bench's stand-in for network distance: bytes pass
intact and in order, many connections at once, EOF travels both ways, one
connection's failure leaves the others alone, and it holds bytes at least
as long as asked (lower bounds only: this machine is noisy)."""
from __future__ import annotations

import importlib.util
import os
import socket
import statistics
import struct
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List

import pytest
import redis as redis_lib

from tests.support.servers import free_port, wait_until

# bench/ is no package, and its module names (load, stream, report) would shadow others on sys.path.
_spec = importlib.util.spec_from_file_location("bench_distance", Path(__file__).parents[2] / "bench" / "distance.py")
assert _spec is not None and _spec.loader is not None
distance = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(distance)

RTT_MS = 20.0  # for the timing checks: large against this machine's noise


class Upstream:
    """A TCP server on a free port running `handle(conn)` per connection, each in a thread."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.handle = handle
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            self.handle(conn)

    def close(self) -> None:
        self.sock.close()


def echo(conn: socket.socket) -> None:
    try:
        while data := conn.recv(65536):
            conn.sendall(data)
    except OSError:  # the client went away: this connection ends
        pass


def read_exactly(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = sock.recv(min(65536, n - got))
        assert data, f"EOF after {got} of {n} bytes"
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def connect(proxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


@pytest.fixture
def echo_server() -> Iterator[Upstream]:
    server = Upstream(echo)
    yield server
    server.close()


@pytest.fixture
def echo_proxy(echo_server: Upstream) -> Iterator[object]:
    with distance.DelayProxy("127.0.0.1", echo_server.port, rtt_ms=1.0) as proxy:
        yield proxy


def test_build_is_cached_until_the_source_changes() -> None:
    binary = distance.build()
    built = binary.stat().st_mtime_ns
    assert distance.build() == binary and binary.stat().st_mtime_ns == built
    assert os.access(binary, os.X_OK)


def test_a_large_payload_comes_back_intact(echo_proxy) -> None:
    payload = os.urandom(5 << 20)
    with connect(echo_proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = read_exactly(sock, len(payload))
        sender.join()
    assert received == payload


def test_redis_values_pass_through_both_ways(session_redis) -> None:
    value = os.urandom(1 << 20)
    with distance.DelayProxy("127.0.0.1", session_redis.port, rtt_ms=0.5) as proxy:
        client = redis_lib.Redis.from_url(distance.proxied_redis_url(session_redis.url, proxy))
        try:
            client.set("delay-proxy-test", value)
            assert client.get("delay-proxy-test") == value
        finally:
            client.delete("delay-proxy-test")
            client.close()


def test_fifty_connections_at_once_are_all_served_and_then_freed(echo_proxy) -> None:
    count, barrier = 50, threading.Barrier(50)
    answers: List[bytes] = [b""] * count
    errors: List[BaseException] = []

    def one(i: int) -> None:
        try:
            with connect(echo_proxy) as sock:
                barrier.wait(timeout=30)
                message = f"connection {i} ".encode() * 1000
                for _ in range(3):
                    sock.sendall(message)
                    answers[i] = read_exactly(sock, len(message))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert answers == [f"connection {i} ".encode() * 1000 for i in range(count)]
    pid = echo_proxy.process.pid
    wait_until(lambda: threads_of(pid) == 1, 10, "the proxy kept threads of closed connections")


def test_upstream_closing_reaches_the_client_after_its_last_bytes() -> None:
    server = Upstream(lambda conn: conn.sendall(b"last words"))
    try:
        with distance.DelayProxy("127.0.0.1", server.port, rtt_ms=1.0) as proxy, connect(proxy) as sock:
            assert read_exactly(sock, 10) == b"last words"
            assert sock.recv(100) == b""
    finally:
        server.close()


def test_client_closing_reaches_the_upstream_which_can_still_answer() -> None:
    def count_then_answer(conn: socket.socket) -> None:
        received = b""
        while data := conn.recv(65536):
            received += data
        conn.sendall(str(len(received)).encode())

    server = Upstream(count_then_answer)
    try:
        with distance.DelayProxy("127.0.0.1", server.port, rtt_ms=1.0) as proxy, connect(proxy) as sock:
            sock.sendall(b"x" * 100_000)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(100) == b"100000"
            assert sock.recv(100) == b""
    finally:
        server.close()


def test_a_failed_connection_leaves_the_proxy_serving(echo_server: Upstream) -> None:
    port = free_port()  # nothing listens here yet
    with distance.DelayProxy("127.0.0.1", port, rtt_ms=1.0) as proxy:
        with connect(proxy) as sock:  # the upstream refuses: the client sees the connection end
            sock.sendall(b"anyone?")
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass
        assert proxy.process.poll() is None

    with distance.DelayProxy("127.0.0.1", echo_server.port, rtt_ms=1.0) as proxy:
        with connect(proxy) as sock:  # a client that resets mid-stream
            sock.sendall(os.urandom(1 << 20))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
        with connect(proxy) as sock:
            sock.sendall(b"still there?")
            assert read_exactly(sock, 12) == b"still there?"
        assert proxy.process.poll() is None
        pid = proxy.process.pid
        wait_until(lambda: threads_of(pid) == 1, 10, "the proxy kept threads of closed connections")


def test_a_round_trip_takes_at_least_the_rtt(echo_server: Upstream) -> None:
    with distance.DelayProxy("127.0.0.1", echo_server.port, rtt_ms=RTT_MS) as proxy, connect(proxy) as sock:
        sock.sendall(b"warm")
        read_exactly(sock, 4)
        times = []
        for _ in range(7):
            start = time.perf_counter()
            sock.sendall(b"ping")
            read_exactly(sock, 4)
            times.append((time.perf_counter() - start) * 1000)
    assert statistics.median(times) >= RTT_MS
    assert min(times) >= RTT_MS


def test_a_new_connection_costs_what_tcp_set_up_would() -> None:
    """The server's greeting reaches the client 2 RTT after it connects
    (connect's RTT, the final ACK's half, the greeting's half); the client's
    first bytes reach the server 1.5 RTT after it connects."""
    first_bytes_at: List[float] = []

    def greet_then_listen(conn: socket.socket) -> None:
        conn.sendall(b"hello")
        if conn.recv(100):
            first_bytes_at.append(time.perf_counter())

    server = Upstream(greet_then_listen)
    try:
        with distance.DelayProxy("127.0.0.1", server.port, rtt_ms=RTT_MS) as proxy:
            start = time.perf_counter()
            with connect(proxy) as sock:
                sock.sendall(b"hi")
                assert read_exactly(sock, 5) == b"hello"
                greeted = time.perf_counter()
                wait_until(lambda: first_bytes_at, 10, "the server got no bytes")
    finally:
        server.close()
    assert (greeted - start) * 1000 >= 2 * RTT_MS
    assert (first_bytes_at[0] - start) * 1000 >= 1.5 * RTT_MS


def test_urls_point_at_the_proxy_and_keep_everything_else() -> None:
    class Proxy:
        host, port = "127.0.0.1", 4321

    assert distance.proxied_mysql_url("mysql://u:p%40ss@127.0.0.1:3306/db?tls=off", Proxy) == \
        "mysql://u:p%40ss@127.0.0.1:4321/db?tls=off"
    assert distance.proxied_mysql_url("mysql://u:p@localhost/db?unix_socket=/run/mysqld/mysqld.sock", Proxy) == \
        "mysql://u:p@127.0.0.1:4321/db"
    assert distance.mysql_upstream("mysql://u:p@localhost/db?unix_socket=/run/mysqld/mysqld.sock") == \
        ("127.0.0.1", 3306)
    assert distance.proxied_redis_url("redis://:secret@10.0.0.5:6380/13", Proxy) == "redis://:secret@127.0.0.1:4321/13"
    with pytest.raises(ValueError):
        distance.proxied_redis_url("unix:///run/redis.sock", Proxy)
