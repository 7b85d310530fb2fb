-- The stream: every event that concerns a user takes the next seq of the
-- user's one sequence (inbox_counters). A message event is an inbox row, now
-- for the sender too; every other event (edit, delete, read, receipt, join,
-- leave) is an events row. Expand only: the code before it ignores the new
-- columns and tables, so it runs while the old release still serves.

-- The conversation an inbox row belongs to, from its user's side: the other
-- user (direct), the group, or the user itself (a note to self). History and
-- the conversation list are range scans of ix_inbox_peer. `silent` is 1 for
-- what never counts as unread: what the user sent (notes to self included)
-- and a deleted message. An unread count is a scan of that index alone.
ALTER TABLE inbox ADD COLUMN peer_id CHAR(36) NULL;

ALTER TABLE inbox ADD COLUMN silent SMALLINT NOT NULL DEFAULT 0;

UPDATE inbox SET peer_id = (
    SELECT CASE WHEN m.group_id IS NOT NULL THEN m.group_id
                WHEN m.sender_id = inbox.user_id THEN m.recipient_id
                ELSE m.sender_id END
    FROM messages m WHERE m.id = inbox.message_id);

UPDATE inbox SET silent = 1 WHERE peer_id = user_id;

CREATE INDEX ix_inbox_peer ON inbox (user_id, peer_id, seq, silent);

-- Edited in place; a deleted message keeps its row (its streams' events
-- refer to it) with its text erased.
ALTER TABLE messages ADD COLUMN edited_at DATETIME(6) NULL;

ALTER TABLE messages ADD COLUMN deleted_at DATETIME(6) NULL;

-- Counts the edits and the deletion: the cache refuses an entry of a
-- message older than a change it has seen (cache.py).
ALTER TABLE messages ADD COLUMN version INT NOT NULL DEFAULT 0;

-- 0: the user's reads send no receipts.
ALTER TABLE users ADD COLUMN read_receipts SMALLINT NOT NULL DEFAULT 1;

-- The seq of the user's join event, so a group without messages yet still
-- has a place in the user's conversation list.
ALTER TABLE group_members ADD COLUMN joined_seq BIGINT NOT NULL DEFAULT 0;

-- The events that are not messages. Nothing here holds text: an edit event
-- shows its message's current text, so a deletion erases it everywhere.
-- peer_id is the conversation (read, receipt) or the group (join, leave);
-- actor_id who read (receipt) or who joined or left.
CREATE TABLE events (
    user_id CHAR(36) NOT NULL,
    seq BIGINT NOT NULL,
    type VARCHAR(8) NOT NULL,
    peer_id CHAR(36) NULL,
    message_id CHAR(36) NULL,
    actor_id CHAR(36) NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id, seq),
    CONSTRAINT fk_events_user FOREIGN KEY (user_id) REFERENCES users (id)
);

CREATE INDEX ix_events_message ON events (message_id);

CREATE INDEX ix_events_created_at ON events (created_at);

-- How far a user has read each conversation: the user's seq of the newest
-- message read. It only moves forward.
CREATE TABLE read_markers (
    user_id CHAR(36) NOT NULL,
    peer_id CHAR(36) NOT NULL,
    seq BIGINT NOT NULL,
    message_id CHAR(36) NOT NULL,
    PRIMARY KEY (user_id, peer_id),
    CONSTRAINT fk_read_markers_user FOREIGN KEY (user_id) REFERENCES users (id)
);
