"""The waiting-read caps as one process counts them (no Redis: the embedded
default, or Redis down): at most `per_user` waits of one user and
`per_process` in all; a slot is free again when its wait ends."""
from __future__ import annotations

from contextlib import ExitStack

from chalicelib.waitslots import PER_PROCESS, PER_USER, WaitSlots


def test_a_user_holds_at_most_per_user_waits_and_a_slot_frees_when_its_wait_ends():
    slots = WaitSlots(per_user=2, per_process=10)
    with ExitStack() as first:
        assert [first.enter_context(slots.take("alice", seconds=20)) for _ in range(2)] == [None, None]
        with slots.take("alice", seconds=20) as refused:
            assert refused == PER_USER
        with slots.take("bob", seconds=20) as refused:
            assert refused is None  # another user is not held back
    with slots.take("alice", seconds=20) as refused:
        assert refused is None


def test_a_process_holds_at_most_per_process_waits_in_all():
    slots = WaitSlots(per_user=5, per_process=3)
    with ExitStack() as held:
        assert [held.enter_context(slots.take(f"user{i}", seconds=20)) for i in range(3)] == [None] * 3
        with slots.take("user9", seconds=20) as refused:
            assert refused == PER_PROCESS
    with slots.take("user9", seconds=20) as refused:
        assert refused is None
