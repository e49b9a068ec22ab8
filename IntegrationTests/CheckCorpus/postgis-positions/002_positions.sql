-- A fleet map: every new position is pushed to the map clients (pg_eventserv-style realtime GIS).
CREATE TABLE vehicle_positions (
    id bigserial PRIMARY KEY,
    vehicle varchar(32) NOT NULL,
    position geometry(Point, 4326) NOT NULL,
    heading smallint CHECK (heading BETWEEN 0 AND 359),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX vehicle_positions_position ON vehicle_positions USING gist (position);

CREATE FUNCTION vehicle_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Coordinates, not the geometry's text: a point is small, a polygon could pass 8,000 bytes.
    PERFORM pg_notify('vehicle_moved', json_build_object(
        'id', NEW.id, 'vehicle', NEW.vehicle, 'lon', ST_X(NEW.position), 'lat', ST_Y(NEW.position))::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER vehicle_moved AFTER INSERT OR UPDATE OF position ON vehicle_positions
    FOR EACH ROW EXECUTE FUNCTION vehicle_moved();
