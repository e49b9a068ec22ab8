ALTER TABLE outbox DROP COLUMN published_at;
