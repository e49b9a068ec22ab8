-- Needs 2's function: runs after 2 (versions are numbers, not text).
ALTER TABLE outbox ADD COLUMN published_at timestamptz;
COMMENT ON FUNCTION outbox_notify() IS 'wakes the relay with the new row''s id';
