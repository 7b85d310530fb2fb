-- Retention (RETENTION_DAYS): the purge finds the oldest messages by time,
-- then their inbox rows through ix_inbox_message.

CREATE INDEX ix_messages_sent_at ON messages (sent_at);
