-- Deploy worker:jobs_notify to pg
-- requires: jobs

BEGIN;

CREATE FUNCTION worker.wake_workers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Workers only need to know that something is waiting: no payload.
    PERFORM pg_notify('worker:jobs', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER wake_workers AFTER INSERT ON worker.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION worker.wake_workers();

COMMIT;
