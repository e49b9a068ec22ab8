-- A job queue that wakes the workers of every queue and those of the job's own queue, on a channel per queue.
CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    queue_name varchar(128) NOT NULL,
    task text NOT NULL CHECK (length(task) <= 200)
);

CREATE FUNCTION jobs_wake_workers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobs_any', json_build_object('job', NEW.id)::text);
    PERFORM pg_notify('jobs_queue#' || NEW.queue_name, json_build_object('job', NEW.id)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_wake_workers AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_wake_workers();
