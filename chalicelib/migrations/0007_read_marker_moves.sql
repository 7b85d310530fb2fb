-- Which write last moved a read marker (the marker of the counters it
-- advanced, inbox_counters.last_message_id): a mark_read's events are taken
-- in the same batch as the move, only if it moved. Expand only.
ALTER TABLE read_markers ADD COLUMN moved_by CHAR(36) NULL;
