-- Written for psql, which runs each statement on its own: CONCURRENTLY cannot run inside a transaction.
-- recorded_at comes from 2_…: this file must run after it (2 before 10).
CREATE INDEX CONCURRENTLY events_recorded_at ON events (recorded_at);
CREATE INDEX CONCURRENTLY events_stream ON events (stream, id);
