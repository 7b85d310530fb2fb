-- Which message last advanced each inbox counter, so a fan-out can insert
-- its inbox rows (and read back their seqs) from exactly the counters it
-- advanced, in a fixed number of statements whatever the group's size.
-- Expand only: code that does not know the column ignores it.

ALTER TABLE inbox_counters ADD COLUMN last_message_id CHAR(36) NULL;

CREATE INDEX ix_inbox_counters_last_message ON inbox_counters (last_message_id);
