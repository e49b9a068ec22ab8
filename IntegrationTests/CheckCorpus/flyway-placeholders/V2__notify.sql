CREATE FUNCTION ${schema}.notification_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Flyway replaces placeholders inside function bodies too.
    PERFORM pg_notify('${channel}', json_build_object('id', NEW.id, 'recipient', NEW.recipient)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER notification_created AFTER INSERT ON ${schema}.notifications
    FOR EACH ROW EXECUTE FUNCTION ${schema}.notification_created();
