"""What a new device needs without reading the whole stream: the user's
conversations (most recent first, with unread counts), one conversation's
history, and a group's members. Each is a few index lookups and range scans
of the user's stream, whatever its length."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..contract import MAX_UNREAD_COUNTED
from ..db import Tx
from ..errors import BadRequest, GroupNotFound, NotAMember
from ..repositories import Groups, Inbox, Members, ReadMarkers, Users
from .deps import Deps
from .results import Conversations, GroupInfo, History, message_event


class Browsing:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def conversations(self, *, caller: Optional[str], user_id: str, limit: int,
                      before: Optional[int]) -> Conversations:
        """Each conversation's place is the seq of its newest message in the
        user's stream (a group without messages yet: the user's join)."""
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        deps.limit(deps.limits.reads, user_id)

        def work(tx: Tx) -> Conversations:
            # Two round trips: where each conversation is, then what the page shows of them.
            newest, joined = tx.fetch(Inbox(tx).newest_by_conversation(user_id=user_id),
                                      Members.groups_of(user_id=user_id))
            for group_id, seq in joined.items():
                newest.setdefault(group_id, seq)
            order = sorted(((seq, peer) for peer, seq in newest.items() if before is None or seq < before),
                           reverse=True)
            page, more = order[:limit], len(order) > limit
            peers = [peer for _, peer in page]
            entries, groups, accounts, markers, unread = tx.fetch(
                Inbox.at(user_id=user_id, seqs=[seq for seq, _ in page]),
                Groups.named(group_ids=peers),
                Users.accounts(user_ids=peers),  # the direct ones among them (a group id is no user's)
                ReadMarkers.of(user_id=user_id, peer_ids=peers),
                Inbox.unread(user_id=user_id, peer_ids=peers, most=MAX_UNREAD_COUNTED))
            last = {e.seq: e.message for e in entries}
            people = {a.user_id: a.name for a in accounts}
            items: List[Dict[str, Any]] = []
            for seq, peer in page:
                message = last.get(seq)
                marker: Tuple[Optional[int], Optional[str]] = markers.get(peer, (None, None))
                items.append({
                    "kind": "group" if peer in groups else "direct",
                    "id": peer,
                    "name": groups[peer][0] if peer in groups else people.get(peer),
                    "last_message": None if message is None else message_event(seq, message),
                    "unread": unread.get(peer, 0),
                    "read_up_to": marker[1],
                    "read_up_to_seq": marker[0],
                })
            return Conversations(items, page[-1][0] if more else None)

        return deps.db.run(work, write=False)

    def history(self, *, caller: Optional[str], user_id: str, with_user_id: Optional[str], group_id: Optional[str],
                before_seq: Optional[int], limit: int) -> History:
        """The conversation's messages in the user's stream, newest first."""
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        if (with_user_id is None) == (group_id is None):
            raise BadRequest("with_user_id", "give exactly one of with_user_id and group_id")
        deps.limit(deps.limits.reads, user_id)
        peer = with_user_id or group_id or ""

        def work(tx: Tx) -> History:
            entries = Inbox(tx).history(user_id=user_id, peer_id=peer,
                                        before_seq=before_seq if before_seq is not None else 2**63 - 1,
                                        limit=limit + 1)
            messages = [message_event(e.seq, e.message) for e in entries[:limit]]
            return History(messages, messages[-1]["seq"] if len(entries) > limit else None)

        return deps.db.run(work, write=False)

    def group_info(self, *, caller: Optional[str], user_id: str, group_id: str, after_user_id: Optional[str],
                   limit: int) -> GroupInfo:
        """For members only; the members in user id order, paged."""
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        deps.limit(deps.limits.reads, user_id)

        def work(tx: Tx) -> GroupInfo:
            named, member, rows = tx.fetch(Groups.named(group_ids=[group_id]),
                                           Members.is_member(group_id=group_id, user_id=user_id),
                                           Members.page(group_id=group_id, after_user_id=after_user_id or "",
                                                        limit=limit + 1))
            if group_id not in named:
                raise GroupNotFound(f"group_id: no group {group_id}")
            if not member:
                raise NotAMember("only members of the group can see its members")
            members = [{"user_id": uid, "user_name": name, "handle": handle} for uid, name, handle in rows[:limit]]
            name, count = named[group_id]
            return GroupInfo(group_id, name, count, members, members[-1]["user_id"] if len(rows) > limit else None)

        return deps.db.run(work, write=False)
