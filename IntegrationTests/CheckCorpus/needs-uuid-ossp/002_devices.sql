CREATE TABLE devices (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    label varchar(60) NOT NULL,
    last_seen timestamptz
);

CREATE FUNCTION device_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('device_seen', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER device_seen AFTER INSERT OR UPDATE ON devices FOR EACH ROW EXECUTE FUNCTION device_seen();
