CREATE FUNCTION shipment_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('${channel}', json_build_object('shipment', NEW.id, 'state', NEW.state)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER shipment_changed AFTER INSERT OR UPDATE ON ${shipments_table}
    FOR EACH ROW EXECUTE FUNCTION shipment_changed();
