"""Delivery latency: how long after a send a waiting recipient has the
message, by long-poll and by WebSocket, with Redis (MariaDB + Redis, the
deployed shape) and without (the embedded SQLite default), through the
development server over real sockets: a message's path as a client sees it.

Latency is measured from the send's response (so it can be negative: the
development server posts to the WebSocket before it answers the send) and
from the moment the send was issued."""
from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

from harness import AUTH_SECRET, REDIS_URL, percentile

WARMUP = 5  # first sends (boto3's client, the first connections) are not the steady state
PACING_SECONDS = 0.02  # between a reader starting its wait and the send (a bench, not a test)


def _call(base: str, path: str, token: Optional[str] = None, **params: Any) -> Dict[str, Any]:
    query = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in params.items())
    request = urllib.request.Request(f"{base}{path}?{query}", method="POST", data=b"")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def _summary(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            "n": len(ordered)}


def _long_poll(base: str, alice: Dict[str, str], bob: Dict[str, str], rounds: int) -> Dict[str, Any]:
    from_ack: List[float] = []
    from_send: List[float] = []
    after = 0
    for i in range(rounds + WARMUP):
        got: Dict[str, Any] = {}

        def reader() -> None:
            page = _call(base, "/read_messages", bob["token"], user_id=bob["user_id"], after=after, wait=10)
            got["at"], got["page"] = time.perf_counter(), page

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(PACING_SECONDS)
        sent_at = time.perf_counter()
        _call(base, "/send", alice["token"], sending_user_id=alice["user_id"], receiving_user_id=bob["user_id"],
              message_text=f"long-poll {i}")
        acked_at = time.perf_counter()
        thread.join(30)
        assert got["page"]["messages"], got
        after = got["page"]["next_after"]
        from_ack.append(got["at"] - acked_at)
        from_send.append(got["at"] - sent_at)
    return {"from_response": _summary(from_ack[WARMUP:]), "from_send": _summary(from_send[WARMUP:])}


def _websocket(base: str, alice: Dict[str, str], bob: Dict[str, str], rounds: int) -> Dict[str, Any]:
    import aiohttp

    ticket = _call(base, "/connect_ticket", bob["token"], user_id=bob["user_id"])
    from_ack: List[float] = []
    from_send: List[float] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{ticket['url']}?ticket={ticket['ticket']}") as ws:
                for i in range(rounds + WARMUP):
                    def send(text: str = f"websocket {i}") -> float:
                        _call(base, "/send", alice["token"], sending_user_id=alice["user_id"],
                              receiving_user_id=bob["user_id"], message_text=text)
                        return time.perf_counter()  # when the send's response arrived

                    sent_at = time.perf_counter()
                    acked = loop.run_in_executor(None, send)
                    frame = await ws.receive(timeout=10)
                    arrived_at = time.perf_counter()
                    acked_at = await acked
                    assert json.loads(frame.data)["message"]["text"] == f"websocket {i}"
                    from_ack.append(arrived_at - acked_at)
                    from_send.append(arrived_at - sent_at)

    asyncio.run(run())
    return {"from_response": _summary(from_ack[WARMUP:]), "from_send": _summary(from_send[WARMUP:])}


def run(mysql_database_url: str, rounds: int) -> Dict[str, Any]:
    from tests.support.devserver import DevServer

    results: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        variants = {
            "MariaDB + Redis": {"DATABASE_URL": mysql_database_url, "REDIS_URL": REDIS_URL},
            "SQLite, no Redis": {"DATABASE_URL": f"sqlite:///{Path(work) / 'delivery.sqlite3'}"},
        }
        for name, settings in variants.items():
            server = DevServer(Path(work) / f"{len(results)}.log", AUTH_SECRET=AUTH_SECRET, **settings).start()
            try:
                users = [_call(server.url, "/register", user_name=n) for n in ("alice", "bob", "carol")]
                results[name] = {"long_poll": _long_poll(server.url, users[0], users[1], rounds),
                                 "websocket": _websocket(server.url, users[0], users[2], rounds)}
            finally:
                server.stop()
            for path, r in results[name].items():
                print(f"  {name:18s} {path:9s} from the send's response p50 {r['from_response']['p50_ms']:7.2f} ms "
                      f"p99 {r['from_response']['p99_ms']:7.2f} ms; from issuing the send p50 "
                      f"{r['from_send']['p50_ms']:7.2f} ms p99 {r['from_send']['p99_ms']:7.2f} ms", flush=True)
    return results
