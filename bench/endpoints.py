"""Latency of every endpoint, and of the three ways a read is answered: cache hit, miss, no cache."""
from __future__ import annotations

import uuid
from typing import Any, Dict

from harness import Bench, Case


def register(bench: Bench, name: str) -> Dict[str, Any]:
    return bench.call("/register", {"user_name": name})["json"]


def poll_once(bench: Bench, user: Dict[str, Any]) -> None:
    """An active user has polled: that read's refill gives it a cache window,
    so later sends write through to it."""
    bench.call("/read_messages", {"user_id": user["user_id"], "after": 0}, user["token"])


def run(bench: Bench, *, rounds: int, calls: int, warmup: int) -> Dict[str, Dict[str, Any]]:
    from chalicelib import keys, wiring

    alice, bob = register(bench, "alice"), register(bench, "bob")
    members = [alice] + [register(bench, f"member{i}") for i in range(4)]
    for user in members + [bob]:
        poll_once(bench, user)
    five = bench.call("/create_group", {"group_name": "five"}, alice["token"])["json"]["group_id"]
    join_leave = bench.call("/create_group", {"group_name": "join-leave"}, alice["token"])["json"]["group_id"]
    for m in members:
        bench.call("/update_group", {"user_id": m["user_id"], "group_id": five, "to_be_added": 1}, m["token"])

    # The reads get their own pair, so the sends measured alongside do not
    # change what a read returns: always one new message (after = newest - 1).
    writer, reader = register(bench, "writer"), register(bench, "reader")
    poll_once(bench, reader)
    for i in range(20):
        bench.call("/send", {"sending_user_id": writer["user_id"], "receiving_user_id": reader["user_id"],
                             "message_text": f"message {i}"}, writer["token"])

    def read(i: int) -> Dict[str, Any]:
        return bench.call("/read_messages", {"user_id": reader["user_id"], "after": 19}, reader["token"])

    def evict(i: int) -> None:
        bench.redis.delete(keys.window(reader["user_id"]))

    # The token's session, as a container that has not seen it checks it: in
    # Redis (another container saw it within 30 s), or in the database.
    def new_container(i: int) -> None:
        wiring.service().accounts._deps.session_states().forget_local()

    def new_container_and_session_unknown_to_redis(i: int) -> None:
        new_container(i)
        bench.redis.delete(keys.session(reader["session_id"]))

    def sync(i: int) -> Dict[str, Any]:
        return bench.call("/sync", {"after": 19}, reader["token"])

    # Edits, deletions and read markers each act on a message sent just
    # before (untimed), as a person edits or reads what was just sent.
    latest: Dict[str, str] = {}

    def send_to_bob(i: int) -> None:
        latest["id"] = bench.call("/send", {"sending_user_id": alice["user_id"], "receiving_user_id": bob["user_id"],
                                            "message_text": f"to change {i}"}, alice["token"])["json"]["message_id"]

    handle = f"bench{uuid.uuid4().hex[:8]}"
    bench.call("/register", {"user_name": "signs in", "handle": handle, "password": "a bench password"})

    cases = [
        Case("register", lambda i: bench.call("/register", {"user_name": f"user{i}"}), expect=201),
        Case("block", lambda i: bench.call("/block", {
            "blocking_user_id": bob["user_id"], "blocked_user_id": alice["user_id"], "to_block": (i + 1) % 2},
            bob["token"])),
        Case("create_group", lambda i: bench.call("/create_group", {"group_name": f"g{i}"}, alice["token"]),
             expect=201),
        Case("update_group", lambda i: bench.call("/update_group", {
            "user_id": bob["user_id"], "group_id": join_leave, "to_be_added": (i + 1) % 2}, bob["token"])),
        Case("send", lambda i: bench.call("/send", {
            "sending_user_id": alice["user_id"], "receiving_user_id": bob["user_id"], "message_text": f"hello {i}"},
            alice["token"]), expect=201),
        Case("send_group (5 members)", lambda i: bench.call("/send_group", {
            "sending_user_id": alice["user_id"], "group_id": five, "message_text": f"hello group {i}"},
            alice["token"]), expect=201),
        Case("read_messages (cache hit)", read),
        Case("read_messages (cache miss)", read, before=evict),
        Case("read_messages (no cache)", read, env={"REDIS_URL": None}),
        Case("read_messages (cache hit), session checked in Redis", read, before=new_container),
        Case("read_messages (cache hit), session checked in the database", read,
             before=new_container_and_session_unknown_to_redis),
        Case("login (argon2id)", lambda i: bench.call("/login", {"handle": handle, "password": "a bench password"})),
        Case("sessions (1 device)", lambda i: bench.call("/sessions", {}, alice["token"])),
        Case("users (2 ids)", lambda i: bench.call("/users", {"user_ids": f"{alice['user_id']},{bob['user_id']}"},
                                                   bob["token"])),
        Case("find_user", lambda i: bench.call("/find_user", {"handle": handle}, bob["token"])),
        Case("sync (cache hit)", sync),
        Case("sync (cache miss)", sync, before=evict),
        Case("edit_message (direct)", lambda i: bench.call("/edit_message", {
            "message_id": latest["id"], "message_text": f"edited {i}"}, alice["token"]), before=send_to_bob),
        Case("delete_message (direct)", lambda i: bench.call("/delete_message", {"message_id": latest["id"]},
                                                             alice["token"]), before=send_to_bob),
        Case("mark_read (direct, with a receipt)", lambda i: bench.call("/mark_read", {
            "with_user_id": alice["user_id"], "message_id": latest["id"]}, bob["token"]), before=send_to_bob),
        Case("group_info (5 members)", lambda i: bench.call("/group_info", {"group_id": five}, alice["token"])),
        Case("account", lambda i: bench.call("/account", {}, alice["token"])),
    ]
    return bench.run(cases, rounds=rounds, calls=calls, warmup=warmup, label="endpoints ")
