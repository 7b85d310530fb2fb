-- Which message last advanced each inbox counter, so a fan-out can insert
-- its inbox rows (and read back their seqs) from exactly the counters it
-- advanced, in a fixed number of statements whatever the group's size. It
-- is read only by joining through the group's members (no index: a
-- secondary index would cost every counter update a second write).
-- Expand only: code that does not know the column ignores it.

ALTER TABLE inbox_counters ADD COLUMN last_message_id CHAR(36) NULL;
