-- Which write last changed a row, named by the marker of the counters it
-- advanced (inbox_counters.last_message_id): the statements after a
-- change in one batch act only if that write made it. Expand only.

-- The write that last moved a read marker: a mark_read's events are
-- taken only if it moved.
ALTER TABLE read_markers ADD COLUMN moved_by CHAR(36) NULL;

-- The write that last changed the member count: a join adds the member and
-- tells every member only if it took a seat, a leave only if it gave one back.
ALTER TABLE chat_groups ADD COLUMN changed_by CHAR(36) NULL;
