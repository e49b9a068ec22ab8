-- migrate:up
CREATE FUNCTION notify_room_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('room_messages', json_build_object('event', 'deleted', 'room', OLD.room_id, 'message', OLD.id)::text);
    ELSE
        -- Only the keys: the body may be long, and listeners fetch what they are allowed to see.
        PERFORM pg_notify('room_messages', json_build_object('event', lower(TG_OP), 'room', NEW.room_id, 'message', NEW.id)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER room_messages_notify AFTER INSERT OR UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION notify_room_message();

-- migrate:down
DROP TRIGGER room_messages_notify ON messages;
DROP FUNCTION notify_room_message();
