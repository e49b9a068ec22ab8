CREATE TABLE qc_jobs (
    id bigserial PRIMARY KEY,
    q_name text NOT NULL CHECK (length(q_name) > 0),
    method text NOT NULL,
    args json NOT NULL DEFAULT '[]'
);

CREATE FUNCTION qc_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('qc_' || TG_TABLE_NAME, NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER qc_notify AFTER INSERT ON qc_jobs FOR EACH ROW EXECUTE FUNCTION qc_notify();
