ALTER TABLE orders ADD COLUMN total_cents integer NOT NULL DEFAULT 0 CHECK (total_cents >= 0);

CREATE FUNCTION orders_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed orders := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    PERFORM pg_notify('orders_changed', json_build_object('op', lower(TG_OP), 'id', changed.id, 'status', changed.status)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_changed AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_changed();
