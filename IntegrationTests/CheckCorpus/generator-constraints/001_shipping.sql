-- Codes with a format the schema enforces: a check must generate values that match it.
CREATE TABLE parcels (
    id bigserial PRIMARY KEY,
    -- UPU S10 tracking numbers: two letters, nine digits, two letters.
    tracking_code text NOT NULL UNIQUE CHECK (tracking_code ~ '^[A-Z]{2}[0-9]{9}[A-Z]{2}$'),
    sku varchar(12) NOT NULL CHECK (sku ~* '^(sku|item)-[0-9a-f]{4,6}$'),
    weight_grams integer NOT NULL CHECK (weight_grams > 0)
);

CREATE FUNCTION parcel_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('parcels', json_build_object('op', TG_OP, 'id', coalesce(NEW.id, OLD.id),
                                                   'tracking', coalesce(NEW.tracking_code, OLD.tracking_code))::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER parcel_event AFTER INSERT OR UPDATE OR DELETE ON parcels FOR EACH ROW EXECUTE FUNCTION parcel_event();
