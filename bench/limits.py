"""What the hardening limits hold to, measured: Redis bytes a recipient's
window takes for the largest allowed message, the largest page a read
answers, and how long a send blocked on a locked row takes to get its 503."""
from __future__ import annotations

import json
import time
from typing import Any, Dict

from endpoints import poll_once, register
from harness import Bench, admin_connection

LARGEST = "😀" * 4096  # 4,096 characters, each 4 bytes of UTF-8 and 12 of escaped JSON
INVOCATION_MS = 10_000  # what the blocked send's invocation has left when it starts


def run(bench: Bench, database: str) -> Dict[str, Any]:
    from chalicelib import keys
    from chalicelib.cache import entry_json
    from tests.support.lambda_events import invoke

    # 1. One largest message to a group of 10: the bytes it adds to a recipient's window.
    sender, members = register(bench, "sender"), [register(bench, f"member{i}") for i in range(9)]
    group = bench.call("/create_group", {"group_name": "big"}, sender["token"])["json"]["group_id"]
    for user in [sender] + members:
        bench.call("/update_group", {"user_id": user["user_id"], "group_id": group, "to_be_added": 1}, user["token"])
        poll_once(bench, user)
    key = keys.window(members[0]["user_id"])
    before = bench.redis.memory_usage(key) or 0
    sent = bench.call("/send_group", {"sending_user_id": sender["user_id"], "group_id": group,
                                      "message_text": LARGEST}, sender["token"])
    assert sent["statusCode"] == 201, sent
    after = bench.redis.memory_usage(key) or 0
    item = bench.call("/read_messages", {"user_id": members[0]["user_id"], "after": 0},
                      members[0]["token"])["json"]["messages"][0]
    redis_bytes = {
        "window_bytes_added_per_recipient": after - before,
        "entry_bytes_utf8": len(entry_json(item).encode()),
        "entry_bytes_escaped_json_as_before": len(json.dumps(item, separators=(",", ":"))),
    }

    # 2. The largest page: 100 largest messages waiting, one read with limit=100.
    reader = register(bench, "reader")
    for _ in range(100):
        bench.call("/send", {"sending_user_id": sender["user_id"], "receiving_user_id": reader["user_id"],
                             "message_text": LARGEST}, sender["token"])
    response = bench.call("/read_messages", {"user_id": reader["user_id"], "after": 0, "limit": 100},
                          reader["token"])
    page = response["json"]
    largest_page = {"messages": len(page["messages"]), "has_more": page["has_more"],
                    "body_bytes": len(response["body"].encode()),
                    "lambda_payload_bytes": len(json.dumps({k: v for k, v in response.items() if k != "json"}))}

    # 3. A send blocked on a row lock another connection holds.
    holder = admin_connection(database, autocommit=False)
    try:
        holder.cursor().execute("SELECT last_seq FROM inbox_counters WHERE user_id = %s FOR UPDATE",
                                (reader["user_id"],))
        started = time.perf_counter()
        blocked = invoke(bench.app, "/send", {"sending_user_id": sender["user_id"],
                                              "receiving_user_id": reader["user_id"], "message_text": "blocked"},
                         sender["token"], remaining_ms=INVOCATION_MS)
        seconds = time.perf_counter() - started
    finally:
        holder.rollback()
        holder.close()
    held_lock = {"status": blocked["statusCode"], "retry_after": blocked["headers"].get("Retry-After"),
                 "seconds_to_answer": round(seconds, 2), "lambda_remaining_seconds": INVOCATION_MS // 1000}
    result = {"redis_bytes_largest_message": redis_bytes, "largest_page": largest_page,
              "held_row_lock": held_lock}
    print(f"  {json.dumps(result)}", flush=True)
    return result
