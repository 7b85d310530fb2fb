-- Attachments: files uploaded straight to storage (S3, or data/ locally),
-- then attached to one message by their uploader. Expand only.

-- An upload the user asked for: declared type and size (the most the
-- upload may hold); message_id once attached (each attachment once).
CREATE TABLE attachments (
    id CHAR(36) NOT NULL,
    uploader_id CHAR(36) NOT NULL,
    content_type VARCHAR(100) NOT NULL,
    size BIGINT NOT NULL,
    file_name VARCHAR(255) NULL,
    message_id CHAR(36) NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT fk_attachments_uploader FOREIGN KEY (uploader_id) REFERENCES users (id)
);

CREATE INDEX ix_attachments_message ON attachments (message_id);

CREATE INDEX ix_attachments_created_at ON attachments (created_at);

-- What a message carries, as its items show it (JSON): written with the
-- message, so a read joins nothing.
ALTER TABLE messages ADD COLUMN attachments TEXT NULL;
