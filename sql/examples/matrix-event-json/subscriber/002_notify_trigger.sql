-- Wake the event processors on every new event, including the rows the logical-replication apply worker
-- inserts.
--
-- The payload carries keys only: {"seq": …, "event_id": …, "room_id": …}. The listener reads the event with
--   SELECT json FROM public.event_json WHERE seq = $1
-- An event's JSON can be far larger than NOTIFY's 8,000-byte limit; had the trigger sent it, pg_notify
-- would raise, the apply worker's transaction would fail, and replication would stop and retry the same
-- change forever. The trigger also never parses json (a ::jsonb cast of text that is not JSON would raise
-- just the same).
--
-- Matrix limits event and room ids to 255 bytes; they are sent as they are when they keep to it, and as
-- null otherwise (seq always identifies the row), so no value the publisher sends can make this trigger
-- fail. The largest payload is about 3 KB (255 bytes escaped as \u00XX twice, plus seq).

CREATE FUNCTION public.matrix_event_json_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('matrix_event_json', json_build_object(
        'seq',      NEW.seq,
        'event_id', CASE WHEN octet_length(NEW.event_id) <= 255 THEN NEW.event_id END,
        'room_id',  CASE WHEN octet_length(NEW.room_id) <= 255 THEN NEW.room_id END
    )::text);
    RETURN NULL;  -- AFTER trigger: the result is ignored
END
$$;

CREATE TRIGGER matrix_event_json_trigger
    AFTER INSERT ON public.event_json
    FOR EACH ROW EXECUTE FUNCTION public.matrix_event_json_notify();

-- The apply worker runs with session_replication_role = replica, where ordinary (ENABLE ORIGIN) triggers
-- do not fire. ALWAYS makes this one fire for replicated rows as well as for local INSERTs.
ALTER TABLE public.event_json ENABLE ALWAYS TRIGGER matrix_event_json_trigger;
