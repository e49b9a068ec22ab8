-- +goose Up
CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    queue varchar(64) NOT NULL DEFAULT 'default',
    kind varchar(64) NOT NULL,
    args jsonb NOT NULL DEFAULT '{}',
    state varchar(16) NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'running', 'completed')),
    scheduled_at timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION jobs_wake_workers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'available' THEN
        -- One wake-up per queue and transaction is enough: identical payloads are collapsed on purpose.
        PERFORM pg_notify('jobs_inserted', json_build_object('queue', NEW.queue)::text);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER jobs_wake_workers AFTER INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_wake_workers();

-- +goose Down
DROP TABLE jobs;
