"""Retention on the use cases (SQLite and MariaDB, a clock of the test's
own). A purge counts every user's old rows, so each test starts from an
empty database (empty_deps). The scheduled job, the cache and Redis are
tests/integration/test_retention_job.py's."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from chalicelib.usecases import UseCases
from tests.usecases.steps import inbox, join, send, send_group, user

DAY0 = datetime(2026, 1, 1, 12, 0)


def at(deps, moment, **changes) -> UseCases:
    """The use cases over the same database, with the clock at `moment`."""
    return UseCases(dataclasses.replace(deps, now=lambda: moment, **changes))


def test_messages_older_than_the_retention_go_and_seqs_stay_as_they_were(empty_deps):
    early = at(empty_deps, DAY0)
    alice, bob, carol = user(early, "alice"), user(early, "bob"), user(early, "carol")
    group = early.membership.create_group(caller=None, group_name="g").group_id
    for member in (alice, bob, carol):
        join(early, member, group)
    send(early, alice, bob, "old direct")
    send_group(early, alice, group, "old group")  # three inbox rows: bob's, carol's and alice's own
    later = at(empty_deps, DAY0 + timedelta(days=10))
    send(later, alice, bob, "recent")
    purged = at(empty_deps, DAY0 + timedelta(days=12), retention_days=5).retention.purge(batch=1)
    # 2 + 3 inbox rows; the six join events (alice's to 1, bob's to 2, carol's to 3 members)
    assert (purged.inbox_rows, purged.messages, purged.events, purged.finished) == (5, 2, 6, True), purged
    assert purged.batches == 11  # one row a batch; a message went with its last row
    # bob's stream was: his and carol's joins, the two old messages, "recent" (seqs never renumbered)
    assert [(m["seq"], m["text"]) for m in inbox(later, bob)] == [(5, "recent")]
    assert inbox(later, carol) == []
    assert [(m["seq"], m["text"]) for m in inbox(later, bob, after=4)] == [(5, "recent")]
    assert [e["seq"] for e in later.reading.sync(caller=bob.user_id, user_id=bob.user_id, after=0,
                                                  limit=100).events] == [5]
    again = at(empty_deps, DAY0 + timedelta(days=12), retention_days=5).retention.purge()
    assert (again.inbox_rows, again.messages, again.finished) == (0, 0, True)


def test_a_message_no_inbox_row_holds_goes_too(empty_deps):
    early = at(empty_deps, DAY0)
    alice = user(early, "alice")
    group = early.membership.create_group(caller=None, group_name="alone").group_id
    join(early, alice, group)
    sent = send_group(early, alice, group, "to nobody")
    assert sent.recipients == 0
    # As one sent before senders had streams: no inbox row at all.
    empty_deps.db.run(lambda tx: tx.execute("DELETE FROM inbox WHERE message_id = %s", (sent.message_id,)),
                      write=True)
    purged = at(empty_deps, DAY0 + timedelta(days=40), retention_days=30).retention.purge()
    assert (purged.inbox_rows, purged.messages, purged.events, purged.finished) == (0, 1, 1, True)


def test_without_retention_days_nothing_is_purged(empty_deps):
    early = at(empty_deps, DAY0)
    alice, bob = user(early, "alice"), user(early, "bob")
    send(early, alice, bob, "kept")
    purged = at(empty_deps, DAY0 + timedelta(days=4000)).retention.purge()
    assert (purged.inbox_rows, purged.finished) == (0, True) and "RETENTION_DAYS" in purged.stopped_because
    assert [m["text"] for m in inbox(early, bob)] == ["kept"]
