CREATE TABLE background_jobs (
    id bigserial PRIMARY KEY,
    queue varchar(40) NOT NULL DEFAULT 'default' CHECK (queue IN ('default')),
    worker varchar(120) NOT NULL,
    args jsonb NOT NULL DEFAULT '{}'
);

CREATE FUNCTION background_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobs_insert', json_build_object('queue', NEW.queue)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER background_jobs_inserted AFTER INSERT ON background_jobs
    FOR EACH ROW EXECUTE FUNCTION background_jobs_inserted();
