-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY jobs_fetch ON jobs (queue, scheduled_at) WHERE state = 'available';

-- +goose Down
DROP INDEX CONCURRENTLY jobs_fetch;
