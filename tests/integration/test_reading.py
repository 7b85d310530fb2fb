"""/read_messages: the per-user cursor, paging, min_timestamp, and text that
comes back exactly as it was sent."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.support.http import assert_bad_request, raw_post

ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, ISO)


def with_offset(moment: datetime, hours: int) -> str:
    """`moment` (naive UTC) written in local time at a UTC offset of `hours`."""
    local = moment + timedelta(hours=hours)
    sign = "+" if hours >= 0 else "-"
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{sign}{abs(hours):02d}:00"


def send_many(api, sender, recipient, n: int) -> list:
    ids = []
    for i in range(n):
        r = api.send(sender, recipient, f"m{i + 1}")
        assert r.status == 201, r
        ids.append(r.body["message_id"])
    return ids


def since(api, user, min_timestamp: str, **params: Any):
    r = api.read(user, min_timestamp=min_timestamp, **params)
    assert r.status == 200, r
    return r


# --------------------------------------------------------------------------- the cursor


def test_seqs_are_contiguous_from_1_per_user_across_every_event_of_the_stream(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = api.create_group(alice)
    for user in (alice, bob, carol):
        api.join(user, group)
    api.send(alice, bob, "dm 1")
    api.send_group(carol, group, "group 1")
    api.send(carol, bob, "dm 2")
    api.send(bob, bob, "note")
    api.send_group(alice, group, "group 2")
    # bob's stream: his and carol's joins, then the five messages (a note to self once)
    assert [(e["seq"], e["type"]) for e in api.sync_all(bob)] == [
        (1, "member"), (2, "member"), (3, "message"), (4, "message"), (5, "message"), (6, "message"), (7, "message")]
    messages = api.read(bob).body["messages"]
    assert [m["seq"] for m in messages] == [3, 4, 5, 6, 7]
    assert [(m["kind"], m["text"]) for m in messages] == [
        ("direct", "dm 1"), ("group", "group 1"), ("direct", "dm 2"), ("direct", "note"), ("group", "group 2")]
    # Every user has their own sequence, holding what they sent too; /read_messages
    # shows only what they received.
    assert [(e["seq"], e.get("text")) for e in api.sync_all(alice)] == [
        (1, None), (2, None), (3, None), (4, "dm 1"), (5, "group 1"), (6, "group 2")]
    assert [(m["seq"], m["text"]) for m in api.read(alice).body["messages"]] == [(5, "group 1")]
    assert [(m["seq"], m["text"]) for m in api.read(carol).body["messages"]] == [(4, "group 2")]


def test_paging_with_a_limit_gives_has_more_and_next_after_is_the_last_seq_returned(api):
    alice, bob = api.register("alice"), api.register("bob")
    ids = send_many(api, alice, bob, 5)
    pages, after = [], 0
    for expected_more in (True, True, False):
        r = api.read(bob, after=after, limit=2)
        assert r.status == 200, r
        seqs = [m["seq"] for m in r.body["messages"]]
        assert r.body["has_more"] is expected_more, r
        assert r.body["next_after"] == seqs[-1]
        pages.append(seqs)
        after = r.body["next_after"]
    assert pages == [[1, 2], [3, 4], [5]]
    assert [m["message_id"] for m in api.read_all(bob, limit=2)] == ids


def test_a_page_that_ends_exactly_at_the_newest_message_has_no_more(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 3)
    r = api.read(bob, after=0, limit=3)
    assert [m["seq"] for m in r.body["messages"]] == [1, 2, 3]
    assert r.body["has_more"] is False
    assert r.body["next_after"] == 3


@pytest.mark.parametrize("sent", [0, 2], ids=["a_new_user_at_0", "two_messages_at_2"])
def test_reading_at_the_last_seq_returns_nothing_with_next_after_unchanged(api, sent):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, sent)
    r = api.read(bob, after=sent)
    assert r.status == 200, r
    assert r.body == {"messages": [], "next_after": sent, "has_more": False}


def test_a_cursor_beyond_the_newest_seq_is_a_409_cursor_ahead_naming_the_newest_seq(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 2)
    r = api.read(bob, after=7)
    assert (r.status, r.code, r.body["newest_seq"]) == (409, "CursorAhead", 2), r
    assert "after" in r.body["Message"] and "2" in r.body["Message"]
    # Nothing else changed: the cursor at the newest seq still reads, and a new message arrives after it.
    send_many(api, alice, bob, 1)
    assert [m["seq"] for m in api.read(bob, after=2).body["messages"]] == [3]


def test_a_negative_cursor_says_it_must_be_0_or_more(api):
    bob = api.register("bob")
    r = api.read(bob, after=-1)
    assert_bad_request(r, "after")
    assert "0 or more" in r.body["Message"], r


def test_the_cursor_resumes_where_the_client_left_off(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 2)
    first = api.read(bob, after=0).body
    api.send(alice, bob, "later")
    r = api.read(bob, after=first["next_after"])
    assert [(m["seq"], m["text"]) for m in r.body["messages"]] == [(3, "later")]


def test_the_limit_defaults_to_100(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 101)
    r = api.post("/read_messages", {"user_id": bob.id, "after": 0}, token=bob.token)
    assert r.status == 200, r
    assert [m["seq"] for m in r.body["messages"]] == list(range(1, 101))
    assert r.body["has_more"] is True
    assert r.body["next_after"] == 100
    r = api.read(bob, after=100)
    assert [m["text"] for m in r.body["messages"]] == ["m101"]
    assert r.body["has_more"] is False


def test_limits_of_1_and_1000_are_accepted(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 2)
    r = api.read(bob, after=0, limit=1)
    assert [m["seq"] for m in r.body["messages"]] == [1] and r.body["has_more"] is True, r
    r = api.read(bob, after=0, limit=1000)
    assert [m["seq"] for m in r.body["messages"]] == [1, 2] and r.body["has_more"] is False, r


def test_a_limit_outside_1_to_1000_or_not_a_number_is_a_400_naming_limit(api):
    alice = api.register("alice")
    for bad in ("0", "1001", "x", "-1", "", "1.5"):
        assert_bad_request(api.read(alice, after=0, limit=bad), "limit")
        assert_bad_request(api.read(alice, min_timestamp="2024-07-01 09:10:00.0", limit=bad), "limit")


def test_an_after_that_is_not_a_non_negative_integer_is_a_400_naming_after(api):
    alice = api.register("alice")
    for bad in ("x", "-1", "", "1.0", str(2**63)):
        assert_bad_request(api.read(alice, after=bad), "after")


def test_giving_both_after_and_min_timestamp_is_a_400(api):
    alice = api.register("alice")
    r = api.read(alice, after=0, min_timestamp="2024-07-01 09:10:00.0")
    assert_bad_request(r, "min_timestamp")
    assert "after" in r.body["Message"], r


def test_giving_neither_after_nor_min_timestamp_is_a_400(api):
    alice = api.register("alice")
    r = api.post("/read_messages", {"user_id": alice.id}, token=alice.token)
    assert_bad_request(r, "min_timestamp")
    assert "after" in r.body["Message"], r


def test_a_cursor_read_works_from_a_json_body(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 3)
    r = api.post("/read_messages", token=bob.token, json_body={"user_id": bob.id, "after": 1, "limit": 1})
    assert r.status == 200, r
    assert [m["text"] for m in r.body["messages"]] == ["m2"]
    assert r.body["next_after"] == 2
    assert r.body["has_more"] is True


# --------------------------------------------------------------------------- min_timestamp


def test_min_timestamp_in_the_original_format_returns_every_message_since_then(api):
    alice, bob = api.register("alice"), api.register("bob")
    ids = send_many(api, alice, bob, 3)
    r = since(api, bob, "2024-07-01 09:10:00.0")
    assert [m["message_id"] for m in r.body["messages"]] == ids
    assert r.body["next_after"] == 3
    assert r.body["has_more"] is False


def test_min_timestamp_reads_page_with_limit_and_has_more(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 3)
    r = since(api, bob, "2024-07-01T09:10:00Z", limit=2)
    assert [m["seq"] for m in r.body["messages"]] == [1, 2]
    assert r.body["has_more"] is True
    assert r.body["next_after"] == 2


def test_min_timestamp_is_inclusive_to_the_microsecond(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 3)
    messages = api.read(bob).body["messages"]
    pivot = messages[1]
    moment = parse_iso(pivot["sent_at"])

    def expected(at: datetime) -> list:
        return [m["message_id"] for m in messages if parse_iso(m["sent_at"]) >= at]

    for form in (pivot["sent_at"], moment.strftime("%Y-%m-%d %H:%M:%S.%f")):
        got = [m["message_id"] for m in since(api, bob, form).body["messages"]]
        assert pivot["message_id"] in got
        assert got == expected(moment)

    later = moment + timedelta(microseconds=1)
    got = [m["message_id"] for m in since(api, bob, later.strftime(ISO)).body["messages"]]
    assert pivot["message_id"] not in got
    assert got == expected(later)


def test_min_timestamp_equal_to_the_newest_sent_at_returns_it_and_one_microsecond_later_returns_nothing(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 2)
    last = api.send(alice, bob, "last").body
    r = since(api, bob, last["sent_at"])
    assert last["message_id"] in [m["message_id"] for m in r.body["messages"]]
    assert r.body["messages"][-1]["message_id"] == last["message_id"]
    later = (parse_iso(last["sent_at"]) + timedelta(microseconds=1)).strftime(ISO)
    r = since(api, bob, later)
    assert r.body == {"messages": [], "next_after": 3, "has_more": False}


def test_min_timestamp_with_z_with_an_offset_and_without_a_zone_are_the_same_instant(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 3)
    messages = api.read(bob).body["messages"]
    moment = parse_iso(messages[1]["sent_at"])
    expected = [m["message_id"] for m in messages if parse_iso(m["sent_at"]) >= moment]
    forms = [
        moment.strftime(ISO),
        moment.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        moment.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
        with_offset(moment, 2),
        with_offset(moment, -5),
    ]
    for form in forms:
        got = [m["message_id"] for m in since(api, bob, form).body["messages"]]
        assert got == expected, form


def test_a_plus_sign_that_arrived_as_a_space_is_read_as_plus(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 3)
    messages = api.read(bob).body["messages"]
    moment = parse_iso(messages[1]["sent_at"])
    expected = [m["message_id"] for m in messages if parse_iso(m["sent_at"]) >= moment]
    local = with_offset(moment, 2)
    assert "+02:00" in local
    for raw in (local.replace("+", "%20"), local):  # encoded space, and a '+' the client did not encode
        r = raw_post(api, f"/read_messages?user_id={bob.id}&min_timestamp={raw}", bob.token)
        assert r.status == 200, (raw, r)
        assert [m["message_id"] for m in r.body["messages"]] == expected, raw


def test_the_original_example_with_an_unencoded_space_in_min_timestamp_works(api):
    alice, bob = api.register("alice"), api.register("bob")
    ids = send_many(api, alice, bob, 2)
    r = raw_post(api, f"/read_messages?user_id={bob.id}&min_timestamp=2024-07-01 09:10:00.0", bob.token)
    assert r.status == 200, r
    assert [m["message_id"] for m in r.body["messages"]] == ids


def test_an_empty_min_timestamp_result_returns_next_after_as_the_users_newest_seq(api):
    alice, bob = api.register("alice"), api.register("bob")
    send_many(api, alice, bob, 4)
    r = since(api, bob, "2999-01-01 00:00:00")
    assert r.body == {"messages": [], "next_after": 4, "has_more": False}
    carol = api.register("carol")
    r = since(api, carol, "2024-07-01 09:10:00.0")
    assert r.body == {"messages": [], "next_after": 0, "has_more": False}


def test_a_malformed_min_timestamp_is_a_400_naming_it(api):
    alice = api.register("alice")
    for bad in ("yesterday", "", "2024-13-01 09:10:00", "2024-02-30 09:10:00", "2024-07-01 09:61:00",
                "07/01/2024 09:10", "2024-07-01T09:10:00+25:00", "1719825000"):
        assert_bad_request(api.read(alice, min_timestamp=bad), "min_timestamp")


# --------------------------------------------------------------------------- text round trip


TEXTS = {
    "emoji": "hi 👋🌍🎉",
    "zwj family": "👩‍👩‍👧‍👦 and 👨🏽‍💻 and 🏳️‍🌈",
    "flags and skin tones": "🇮🇱🇺🇸 👍🏽👍🏿",
    "hebrew": "שלום עולם",
    "arabic": "مرحبا بالعالم",
    "mixed direction": "abc שלום 123 مرحبا!",
    "quotes": "it's \"quoted\" and `ticked`",
    "backslashes": "C:\\path\\to\\file \\n is not a newline \\",
    "sql": "'; DROP TABLE users; --",
    "like wildcards": "100% _done_ %% __",
    "whitespace kept": "  line1\nline2\r\nline3\tend\r  ",
    "json-ish": '{"a": [1, 2], "b": null}',
    "html": "<script>alert('x')</script> &amp;",
    "url chars": "a=b&c=d?e#f+g%20h",
    "4096 ascii": "x" * 4096,
    "4096 emoji": "😀" * 4096,
    "4096 cjk": "字" * 4096,
    "one character": ".",
    "astral and combining": "e\u0301 \U0001d54f \u200b\u200d\ufeff",
}
TRANSPORTS = ["query", "json", "form"]


def _send(api, transport: str, path: str, params: dict, token: str):
    if transport == "query":
        return api.post(path, params, token=token)
    if transport == "json":
        return api.post(path, token=token, json_body=params)
    return api.post(path, token=token, form=params)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("name", list(TEXTS))
def test_a_direct_message_text_reads_back_exactly_as_sent(api, name, transport):
    text = TEXTS[name]
    alice, bob = api.register("alice"), api.register("bob")
    r = _send(api, transport, "/send",
              {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": text}, alice.token)
    assert r.status == 201, r
    [item] = api.read(bob).body["messages"]
    assert item["text"] == text
    [item] = since(api, bob, "2024-07-01 09:10:00.0").body["messages"]
    assert item["text"] == text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_group_message_text_reads_back_exactly_as_sent(api, transport):
    text = "👩‍👩‍👧‍👦 'quoted' \"double\" \\ ; DROP TABLE messages; -- 100%_\nשלום\tمرحبا\r"
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    api.join(alice, group)
    api.join(bob, group)
    r = _send(api, transport, "/send_group",
              {"sending_user_id": alice.id, "group_id": group, "message_text": text}, alice.token)
    assert r.status == 201, r
    assert [m["text"] for m in api.read(bob).body["messages"]] == [text]


def test_an_idempotent_retry_of_a_long_emoji_text_matches_it_exactly(api):
    alice, bob = api.register("alice"), api.register("bob")
    text = "😀" * 4095 + "!"
    assert api.send(alice, bob, text, client_message_id="long").status == 201
    r = api.send(alice, bob, text, client_message_id="long")
    assert r.status == 200 and r.body["duplicate"] is True, r
    r = api.send(alice, bob, "😀" * 4096, client_message_id="long")
    assert r.status == 409 and r.code == "IdempotencyConflict", r


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_message_text_longer_than_4096_characters_is_a_400_naming_message_text(api, transport):
    alice, bob = api.register("alice"), api.register("bob")
    for text in ("x" * 4097, "😀" * 4097):
        r = _send(api, transport, "/send",
                  {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": text}, alice.token)
        assert_bad_request(r, "message_text")
    assert api.read(bob).body["messages"] == []


def test_an_empty_message_text_is_a_400_naming_message_text(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    api.join(alice, group)
    assert_bad_request(api.send(alice, bob, ""), "message_text")
    assert_bad_request(api.send_group(alice, group, ""), "message_text")
    r = api.post("/send", token=alice.token,
                 json_body={"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": ""})
    assert_bad_request(r, "message_text")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_control_character_in_a_message_text_is_a_400_naming_message_text(api, transport):
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    api.join(alice, group)
    for char in ("\x00", "\x07", "\x1b", "\x0b", "\x0c", "\x7f", "\x85"):
        params = {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": f"a{char}b"}
        assert_bad_request(_send(api, transport, "/send", params, alice.token), "message_text")
        params = {"sending_user_id": alice.id, "group_id": group, "message_text": f"a{char}b"}
        assert_bad_request(_send(api, transport, "/send_group", params, alice.token), "message_text")
    assert api.read(bob).body["messages"] == []


def test_a_lone_surrogate_in_a_json_message_text_is_a_400_naming_message_text(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.post("/send", token=alice.token,
                 raw_body=('{"sending_user_id": "%s", "receiving_user_id": "%s", "message_text": "a\\ud800b"}'
                           % (alice.id, bob.id)).encode(),
                 headers={"Content-Type": "application/json"})
    assert_bad_request(r, "message_text")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_user_names_up_to_64_characters_are_kept_exactly_and_65_is_a_400(api, transport):
    for name in ("u" * 64, "😀" * 64, " שלום 'x' \"y\" \\ %_ "):
        r = _send(api, transport, "/register", {"user_name": name}, None)
        assert r.status == 201, r
        assert r.body["user_name"] == name
    for name in ("u" * 65, "😀" * 65):
        assert_bad_request(_send(api, transport, "/register", {"user_name": name}, None), "user_name")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_group_names_up_to_128_characters_are_kept_exactly_and_129_is_a_400(api, transport):
    alice = api.register("alice")
    for name in ("g" * 128, "😀" * 128, "'; DROP TABLE chat_groups; --"):
        r = _send(api, transport, "/create_group", {"group_name": name}, alice.token)
        assert r.status == 201, r
        assert r.body["group_name"] == name
    for name in ("g" * 129, "😀" * 129):
        assert_bad_request(_send(api, transport, "/create_group", {"group_name": name}, alice.token), "group_name")


def test_empty_blank_or_control_character_names_are_a_400_naming_the_parameter(api):
    alice = api.register("alice")
    for name in ("", " ", "   ", "\t\n", "a\x00b", "a\x07"):
        assert_bad_request(api.post("/register", {"user_name": name}), "user_name")
        assert_bad_request(api.post("/create_group", {"group_name": name}, token=alice.token), "group_name")


def test_a_page_of_the_largest_messages_stops_short_of_lambdas_response_limit_and_the_rest_follows(api):
    from chalicelib.usecases.reading import MAX_PAGE_BYTES

    alice, bob = api.register("alice"), api.register("bob")
    largest = ["😀" * 4095 + chr(ord("a") + i) for i in range(30)]  # 4,096 characters each, 49 KB as escaped JSON
    for text in largest:
        assert api.send(alice, bob, text).status == 201
    seen, after, pages = [], 0, 0
    while True:
        raw = api.client.http.post(f"/read_messages?user_id={bob.id}&after={after}&limit=100",
                                   headers={"Authorization": f"Bearer {bob.token}"}, body=b"")
        assert raw.status_code == 200
        body = json.loads(raw.body)
        pages += 1
        assert len(raw.body) <= MAX_PAGE_BYTES
        # What Lambda returns to API Gateway: the body again, as an escaped JSON string.
        assert len(json.dumps({"statusCode": 200, "headers": dict(raw.headers), "body": raw.body.decode()})) < 3_000_000
        seen += body["messages"]
        after = body["next_after"]
        if not body["has_more"]:
            break
        assert len(body["messages"]) < 100  # cut by bytes, not by limit
    assert pages == 2
    assert [m["text"] for m in seen] == largest and [m["seq"] for m in seen] == list(range(1, 31))
