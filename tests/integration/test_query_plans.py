"""Every query a request runs is an index lookup or range scan on MariaDB,
never a full scan: each repository method's SQL, captured as the app would
send it, goes through EXPLAIN on a populated database."""
from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Callable, Dict, List, Sequence, Tuple

import pymysql
import pytest

from chalicelib import repositories as r
from chalicelib.db import Tx
from chalicelib.dialects import MySQLDialect
from chalicelib.metering import recording
from chalicelib.settings import Settings
from tests.support.mysql import connect


def _statements(database_url: str, call: Callable[[Tx], Any]) -> List[Tuple[str, Sequence[Any]]]:
    """The SQL (MySQL dialect) and parameters a repository method runs, as
    the app sends them (a batch's statements one by one): the method runs in
    a transaction that is rolled back."""
    dialect = MySQLDialect(Settings.from_env({"DATABASE_URL": database_url}))
    conn = dialect.connect()
    statements: List[Tuple[str, Sequence[Any]]] = []
    stop = recording(statements)
    try:
        call(Tx(conn, dialect, write=True))  # opened with its first statement, never committed
    finally:
        stop()
        statements = [(sql, params) for sql, params in statements if sql != "START TRANSACTION"]
        conn.rollback()
        conn.close()
    return statements


# Every repository method a request runs other than plain INSERTs, with the
# parameters a request would give it. `ids` holds the rows made through the API.
QUERIES: Dict[str, Callable[[Tx, Dict[str, str]], Any]] = {
    "Stream.after": lambda tx, ids: r.Stream(tx).after(user_id=ids["bob"], after=2, limit=101),
    "Stream.remove": lambda tx, ids: r.Stream(tx).remove(user_id=ids["dave"]),
    "Inbox.received_since": lambda tx, ids: r.Inbox(tx).received_since(
        user_id=ids["bob"], since=datetime(2024, 7, 1, 9, 10), limit=101),
    "Blocks.add": lambda tx, ids: r.Blocks(tx).add(blocker_id=ids["alice"], blocked_id=ids["carol"],
                                                   created_at=datetime(2024, 7, 1)),
    "Inbox.holds": lambda tx, ids: r.Inbox(tx).holds(user_id=ids["bob"], message_id=ids["group_message"]),
    "Inbox.history": lambda tx, ids: r.Inbox(tx).history(user_id=ids["bob"], peer_id=ids["alice"], before_seq=40,
                                                         limit=51),
    "Inbox.at": lambda tx, ids: tx.fetch(r.Inbox.at(user_id=ids["bob"], seqs=[30, 31, 32])),
    "Inbox.newest_by_conversation": lambda tx, ids: tx.fetch(r.Inbox(tx).newest_by_conversation(user_id=ids["bob"])),
    "Inbox.unread": lambda tx, ids: tx.fetch(r.Inbox.unread(user_id=ids["bob"], peer_ids=[ids["alice"], ids["group"]],
                                                          most=999)),
    "Events.holders_of": lambda tx, ids: r.Events(tx).holders_of(message_ids=[ids["group_message"]]),
    "Events.remove_unheld_of": lambda tx, ids: r.Events(tx).remove_unheld_of(message_ids=[ids["group_message"]]),
    "Events.oldest_unattached": lambda tx, ids: r.Events(tx).oldest_unattached(before=datetime(2024, 7, 1),
                                                                               limit=1000),
    "Events.remove": lambda tx, ids: r.Events(tx).remove(keys=[(ids["bob"], 1), (ids["carol"], 2)]),
    "ReadMarkers.of": lambda tx, ids: tx.fetch(r.ReadMarkers.of(user_id=ids["bob"], peer_ids=[ids["alice"],
                                                                                                ids["group"]])),
    "Deliveries.edit": lambda tx, ids: r.Deliveries(tx).edit(
        message_id=ids["group_message"], sender_id=ids["alice"], body="y", at=datetime(2024, 7, 1, 9, 11),
        sent_after=datetime(2024, 6, 1), marker="00000000-0000-4000-8000-0000000000e1"),
    "Deliveries.erase": lambda tx, ids: r.Deliveries(tx).erase(
        message_id=ids["group_message"], sender_id=ids["alice"], at=datetime(2024, 7, 1, 9, 11),
        marker="00000000-0000-4000-8000-0000000000e2"),
    "Deliveries.join": lambda tx, ids: r.Deliveries(tx).join(
        group_id=ids["group"], user_id=ids["outsider"], capacity=1000, marker="00000000-0000-4000-8000-0000000000e5",
        at=datetime(2024, 7, 1, 9, 11)),
    "Deliveries.leave": lambda tx, ids: r.Deliveries(tx).leave(
        group_id=ids["group"], user_id=ids["carol"], marker="00000000-0000-4000-8000-0000000000e3",
        at=datetime(2024, 7, 1, 9, 11)),
    "Deliveries.read": lambda tx, ids: r.Deliveries(tx).read(
        reader_id=ids["bob"], peer_id=ids["group"], message_id=ids["group_message"], receipt_to=ids["alice"],
        marker="00000000-0000-4000-8000-0000000000e4", at=datetime(2024, 7, 1, 9, 11)),
    "Groups.named": lambda tx, ids: tx.fetch(r.Groups.named(group_ids=[ids["group"]])),
    "Members.groups_of": lambda tx, ids: tx.fetch(r.Members.groups_of(user_id=ids["bob"])),
    "Members.page": lambda tx, ids: tx.fetch(r.Members.page(group_id=ids["group"], after_user_id="", limit=101)),
    "Messages.existing": lambda tx, ids: r.Messages(tx).existing(message_ids=[ids["group_message"]]),
    "Attachments.of_ids": lambda tx, ids: r.Attachments(tx).of_ids(attachment_ids=[ids["bob"], ids["alice"]]),
    "Attachments.claim": lambda tx, ids: r.Attachments(tx).claim(attachment_ids=[ids["bob"]], uploader_id=ids["bob"],
                                                                 message_id=ids["group_message"],
                                                                 asked_after=datetime(2024, 7, 1)),
    "Attachments.unheld_to": lambda tx, ids: r.Attachments(tx).unheld_to(recipient_id=ids["bob"]),
    "Attachments.held": lambda tx, ids: r.Attachments(tx).held(attachment_id=ids["bob"], user_id=ids["bob"]),
    "Attachments.of_messages": lambda tx, ids: r.Attachments(tx).of_messages(message_ids=[ids["group_message"]]),
    "Attachments.unattached_before": lambda tx, ids: r.Attachments(tx).unattached_before(
        before=datetime(2024, 7, 1), limit=1000),
    "Attachments.remove": lambda tx, ids: r.Attachments(tx).remove(attachment_ids=[ids["bob"]]),
    "Inbox.seqs": lambda tx, ids: r.Inbox(tx).seqs(message_id=ids["group_message"]),
    "Deliveries.group": lambda tx, ids: r.Deliveries(tx).group(
        message=r.StoredMessage("00000000-0000-4000-8000-00000000abcd", ids["alice"], None, ids["group"], "x",
                                datetime(2024, 7, 1, 9, 10)), client_message_id=None),
    "Deliveries.direct": lambda tx, ids: r.Deliveries(tx).direct(
        message=r.StoredMessage("00000000-0000-4000-8000-00000000abce", ids["alice"], ids["bob"], None, "x",
                                datetime(2024, 7, 1, 9, 10)), client_message_id=None),
    "Messages.oldest_deliveries": lambda tx, ids: r.Messages(tx).oldest_deliveries(
        before=datetime(2024, 7, 1), limit=1000),
    "Messages.undelivered_before": lambda tx, ids: r.Messages(tx).undelivered_before(
        before=datetime(2024, 7, 1), limit=1000),
    "Messages.remove": lambda tx, ids: r.Messages(tx).remove(message_ids=[ids["group_message"]]),
    "Inbox.remove_of": lambda tx, ids: r.Inbox(tx).remove_of(message_ids=[ids["group_message"]]),
    "Inbox.remove_some_of": lambda tx, ids: r.Inbox(tx).remove_some_of(message_id=ids["group_message"],
                                                                       user_ids=[ids["bob"], ids["carol"]]),
    "Members.is_member": lambda tx, ids: tx.fetch(r.Members.is_member(group_id=ids["group"], user_id=ids["bob"])),
    "InboxCounters.last_seq": lambda tx, ids: r.InboxCounters(tx).last_seq(user_id=ids["bob"]),
    "Users.exists": lambda tx, ids: r.Users(tx).exists(user_id=ids["bob"]),
    "Blocks.remove": lambda tx, ids: r.Blocks(tx).remove(blocker_id=ids["carol"], blocked_id=ids["alice"]),
    "Groups.exists": lambda tx, ids: r.Groups(tx).exists(group_id=ids["group"]),
    "Groups.free_seat": lambda tx, ids: r.Groups(tx).free_seat(group_id=ids["group"]),
    "Messages.by_client_id": lambda tx, ids: r.Messages(tx).by_client_id(
        sender_id=ids["alice"], client_message_id="key-3"),
    "Messages.remove_unheld_to": lambda tx, ids: r.Messages(tx).remove_unheld_to(recipient_id=ids["bob"]),
    "Users.account": lambda tx, ids: r.Users(tx).account(user_id=ids["bob"]),
    "Users.by_handle": lambda tx, ids: r.Users(tx).by_handle(handle="somebody"),
    "Users.accounts": lambda tx, ids: tx.fetch(r.Users.accounts(user_ids=[ids["bob"], ids["carol"]])),
    "Users.update": lambda tx, ids: r.Users(tx).update(user_id=ids["bob"], name="bobby"),
    "Users.erase": lambda tx, ids: r.Users(tx).erase(user_id=ids["dave"], deleted_at=datetime(2024, 7, 1)),
    "Sessions.live": lambda tx, ids: r.Sessions(tx).live(session_id=ids["bob"]),
    "Sessions.of_user": lambda tx, ids: r.Sessions(tx).of_user(user_id=ids["bob"]),
    "Sessions.revoke": lambda tx, ids: r.Sessions(tx).revoke(session_ids=[ids["bob"]], at=datetime(2024, 7, 1)),
    "LinkCodes.replace": lambda tx, ids: r.LinkCodes(tx).replace(user_id=ids["bob"], code_hash="a" * 64,
                                                                 expires_at=datetime(2024, 7, 1)),
    "LinkCodes.redeem": lambda tx, ids: r.LinkCodes(tx).redeem(code_hash="b" * 64, now=datetime(2024, 7, 1)),
    "LinkCodes.remove_of": lambda tx, ids: r.LinkCodes(tx).remove_of(user_id=ids["bob"]),
    "InboxCounters.remove": lambda tx, ids: r.InboxCounters(tx).remove(user_id=ids["dave"]),
    "Blocks.remove_all_of": lambda tx, ids: r.Blocks(tx).remove_all_of(user_id=ids["carol"]),
    "Inbox.remove_stream": lambda tx, ids: r.Inbox(tx).remove_stream(user_id=ids["bob"]),
}


# Methods that only INSERT a row by its key: nothing for EXPLAIN to find.
PLAIN_INSERT = re.compile(r"INSERT INTO \w+ \([^)]*\) VALUES ")
INSERTS = {"Users.register", "Groups.add", "Sessions.add",
           "Attachments.add"}


def test_every_repository_method_is_either_checked_by_explain_or_a_plain_insert():
    import inspect

    methods = {
        f"{cls.__name__}.{name}"
        for cls in vars(r).values()
        if inspect.isclass(cls) and cls.__module__ == r.__name__ and "tx" in inspect.signature(cls).parameters
        for name, _ in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }
    assert methods == set(QUERIES) | INSERTS


@pytest.fixture
def database_url(mysql_url: str) -> str:
    """The `api` of this module runs on MariaDB only (EXPLAIN is MySQL's)."""
    return mysql_url


@pytest.fixture
def populated(api) -> Dict[str, str]:
    users = {name: api.register(name) for name in ("alice", "bob", "carol", "dave")}
    extra = [api.register(f"user{i}") for i in range(20)]
    group = api.create_group(users["alice"])
    for member in list(users.values()) + extra:
        assert api.join(member, group).status == 200
    assert api.block(users["carol"], users["alice"]).status == 200
    for i in range(10):
        assert api.send(users["alice"], users["bob"], f"direct {i}", client_message_id=f"key-{i}").status == 201
        assert api.send(extra[i], users["bob"], f"from extra {i}").status == 201
    sent = api.send_group(users["alice"], group, "hello_group")
    assert sent.status == 201
    for i in range(5):
        assert api.send_group(users["dave"], group, f"group {i}").status == 201
    # Edits, deletions and read markers, so the events tables are not empty.
    direct = [m for m in api.read_all(users["bob"]) if m["sender_id"] == users["alice"].id]
    for m in direct[:4]:
        assert api.post("/edit_message", {"message_id": m["message_id"], "message_text": "edited"},
                        token=users["alice"].token).status == 200
    assert api.post("/delete_message", {"message_id": direct[5]["message_id"]}, token=users["alice"].token).status == 200
    assert api.post("/mark_read", {"with_user_id": users["alice"].id, "message_id": direct[6]["message_id"]},
                    token=users["bob"].token).status == 200
    return {**{name: u.id for name, u in users.items()}, "group": group, "group_message": sent.body["message_id"],
            "outsider": api.register("outsider").id}


@pytest.mark.parametrize("query", sorted(QUERIES))
def test_the_queries_a_request_runs_use_an_index_on_mariadb_never_a_full_scan(query, populated, mysql_url):
    statements = _statements(mysql_url, lambda tx: QUERIES[query](tx, populated))
    assert statements, "the method ran no statement"
    conn = connect(mysql_url, autocommit=False, cursorclass=pymysql.cursors.DictCursor)
    try:
        cur = conn.cursor()
        cur.execute("ANALYZE TABLE inbox, messages, group_members, blocks, inbox_counters, users, chat_groups,"
                    " sessions, link_codes, events, read_markers, attachments")
        cur.fetchall()
        for sql, params in statements:
            if PLAIN_INSERT.match(sql):
                continue  # a row by its key: nothing for EXPLAIN to find
            cur.execute("EXPLAIN " + sql, params)
            plan = cur.fetchall()
            # A derived table or a UNION's result (<derived2>, <union1,2>) is
            # the few rows the statement's own index reads produced.
            scans = [(row["table"], row["type"]) for row in plan
                     if row["type"] in ("ALL", "index") and not str(row["table"]).startswith("<")]
            assert scans == [], f"{query}: full scan in {sql!r}: {plan}"
        conn.rollback()
    finally:
        conn.close()


def test_the_conversation_list_reads_one_index_of_the_users_entries_and_no_row(populated, mysql_url):
    """Whichever way MariaDB takes it (a loose index scan when conversations
    are long, else a range scan of the user's entries), only ix_inbox_peer is
    read: here 3,000 messages in 20 conversations, written straight into the tables."""
    bob, peers = populated["bob"], [populated[name] for name in ("alice", "carol", "dave")]
    conn = connect(mysql_url, cursorclass=pymysql.cursors.DictCursor)
    try:
        cur = conn.cursor()
        cur.execute("SELECT last_seq FROM inbox_counters WHERE user_id = %s", (bob,))
        seq = cur.fetchone()["last_seq"]
        rows, messages = [], []
        for n in range(3000):
            message_id, peer = str(uuid.uuid4()), peers[n % len(peers)]
            messages.append((message_id, peer, bob, "bulk", datetime(2024, 7, 1)))
            rows.append((bob, seq + n + 1, message_id, datetime(2024, 7, 1), f"{peer[:-2]}{n % 20:02d}"))
        cur.executemany("INSERT INTO messages (id, sender_id, recipient_id, body, sent_at) VALUES (%s, %s, %s, %s, %s)",
                        messages)
        cur.executemany("INSERT INTO inbox (user_id, seq, message_id, sent_at, peer_id) VALUES (%s, %s, %s, %s, %s)",
                        rows)
        cur.execute("ANALYZE TABLE inbox")
        cur.fetchall()
        [(sql, params)] = _statements(mysql_url, lambda tx: tx.fetch(r.Inbox(tx).newest_by_conversation(user_id=bob)))
        cur.execute("EXPLAIN " + sql, params)
        [plan] = cur.fetchall()
    finally:
        conn.close()
    assert plan["key"] == "ix_inbox_peer" and "Using index" in plan["Extra"], plan
