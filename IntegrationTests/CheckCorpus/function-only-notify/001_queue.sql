-- The application enqueues through a function and notifies from there (or from its own code):
-- no trigger sends anything, on purpose.
CREATE TABLE queued_jobs (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    args jsonb NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION enqueue_job(target_queue text, job_args jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO queued_jobs (queue, args) VALUES (target_queue, job_args) RETURNING id INTO new_id;
    PERFORM pg_notify('jobs_' || target_queue, new_id::text);
    RETURN new_id;
END
$$;
