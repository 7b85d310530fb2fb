-- Accounts with devices: handles, passwords, sessions, link codes, and
-- deletion. Expand only: the code before it ignores the new columns and
-- tables, so it runs while the old release still serves.

ALTER TABLE users ADD COLUMN handle VARCHAR(32) NULL;

ALTER TABLE users ADD COLUMN password_hash VARCHAR(255) NULL;

ALTER TABLE users ADD COLUMN deleted_at DATETIME(6) NULL;

-- Unique where set: MySQL and SQLite both allow many NULLs.
CREATE UNIQUE INDEX uq_users_handle ON users (handle);

-- A token names its session; revoking the session revokes the token.
CREATE TABLE sessions (
    id CHAR(36) NOT NULL,
    user_id CHAR(36) NOT NULL,
    device_name VARCHAR(64) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    revoked_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id)
);

CREATE INDEX ix_sessions_user ON sessions (user_id);

-- Tokens issued before sessions name none: each existing user gets one
-- session whose id is the user's own, which those tokens stand for.
INSERT INTO sessions (id, user_id, device_name, created_at)
SELECT id, id, 'signed in before devices', created_at FROM users;

-- One live code per user at most, kept as its SHA-256 (a copy of the table
-- links nothing); used codes are deleted.
CREATE TABLE link_codes (
    code_hash CHAR(64) NOT NULL,
    user_id CHAR(36) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (code_hash),
    CONSTRAINT fk_link_codes_user FOREIGN KEY (user_id) REFERENCES users (id)
);

CREATE INDEX ix_link_codes_user ON link_codes (user_id);
