ALTER TABLE events ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION events_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_appended', json_build_object('id', NEW.id, 'stream', NEW.stream)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_appended AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_appended();
