-- Users, their inbox counters, blocks, groups, messages and inboxes.
-- Written in the SQL that MySQL 8, MariaDB 10.11 and SQLite all accept; the
-- runner appends MySQL's table options (InnoDB, utf8mb4, binary collation).

CREATE TABLE users (
    id CHAR(36) NOT NULL,
    name VARCHAR(64) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id)
);

-- The per-user inbox sequence. Kept out of `users` so that the row a send
-- locks (the recipient's counter) is never one that foreign key checks lock.
CREATE TABLE inbox_counters (
    user_id CHAR(36) NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id),
    CONSTRAINT fk_inbox_counters_user FOREIGN KEY (user_id) REFERENCES users (id)
);

CREATE TABLE blocks (
    blocker_id CHAR(36) NOT NULL,
    blocked_id CHAR(36) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT fk_blocks_blocker FOREIGN KEY (blocker_id) REFERENCES users (id),
    CONSTRAINT fk_blocks_blocked FOREIGN KEY (blocked_id) REFERENCES users (id)
);

CREATE INDEX ix_blocks_blocked ON blocks (blocked_id);

CREATE TABLE chat_groups (
    id CHAR(36) NOT NULL,
    name VARCHAR(128) NOT NULL,
    member_count INT NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id)
);

CREATE TABLE group_members (
    group_id CHAR(36) NOT NULL,
    user_id CHAR(36) NOT NULL,
    joined_at DATETIME(6) NOT NULL,
    PRIMARY KEY (group_id, user_id),
    CONSTRAINT fk_group_members_group FOREIGN KEY (group_id) REFERENCES chat_groups (id),
    CONSTRAINT fk_group_members_user FOREIGN KEY (user_id) REFERENCES users (id)
);

CREATE INDEX ix_group_members_user ON group_members (user_id);

-- A message is stored once; inbox rows deliver it. Exactly one of
-- recipient_id (direct) and group_id (group) is set.
CREATE TABLE messages (
    id CHAR(36) NOT NULL,
    sender_id CHAR(36) NOT NULL,
    recipient_id CHAR(36) NULL,
    group_id CHAR(36) NULL,
    body TEXT NOT NULL,
    sent_at DATETIME(6) NOT NULL,
    client_message_id VARCHAR(64) NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_messages_client_id UNIQUE (sender_id, client_message_id),
    CONSTRAINT fk_messages_sender FOREIGN KEY (sender_id) REFERENCES users (id),
    CONSTRAINT fk_messages_recipient FOREIGN KEY (recipient_id) REFERENCES users (id),
    CONSTRAINT fk_messages_group FOREIGN KEY (group_id) REFERENCES chat_groups (id),
    CONSTRAINT ck_messages_target CHECK ((recipient_id IS NULL) <> (group_id IS NULL))
);

CREATE INDEX ix_messages_recipient ON messages (recipient_id);

CREATE INDEX ix_messages_group ON messages (group_id);

-- One row per delivery; (user_id, seq) is the cursor, gapless per user.
CREATE TABLE inbox (
    user_id CHAR(36) NOT NULL,
    seq BIGINT NOT NULL,
    message_id CHAR(36) NOT NULL,
    sent_at DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id, seq),
    CONSTRAINT fk_inbox_user FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT fk_inbox_message FOREIGN KEY (message_id) REFERENCES messages (id)
);

CREATE INDEX ix_inbox_user_sent_at ON inbox (user_id, sent_at);

CREATE INDEX ix_inbox_message ON inbox (message_id);
