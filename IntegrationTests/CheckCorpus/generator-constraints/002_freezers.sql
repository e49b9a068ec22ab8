-- A bound the usual generated number breaks: freezer readings are below zero.
CREATE TABLE freezer_readings (
    id serial PRIMARY KEY,
    celsius integer NOT NULL CHECK (celsius < 0),
    taken_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION freezer_reading() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('freezer_readings', json_build_object('op', TG_OP, 'id', coalesce(NEW.id, OLD.id))::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER freezer_reading AFTER INSERT OR UPDATE OR DELETE ON freezer_readings FOR EACH ROW EXECUTE FUNCTION freezer_reading();
