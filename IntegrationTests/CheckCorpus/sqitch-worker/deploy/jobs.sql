-- Deploy worker:jobs to pg
-- requires: schema

BEGIN;

CREATE TABLE worker.jobs (
    id bigserial PRIMARY KEY,
    task_identifier text NOT NULL CHECK (length(task_identifier) <= 128),
    payload json NOT NULL DEFAULT '{}',
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts smallint NOT NULL DEFAULT 0
);

COMMIT;
