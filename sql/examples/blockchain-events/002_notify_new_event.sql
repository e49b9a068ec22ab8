-- On every new event: NOTIFY new_event with the event's keys as JSON,
--   {"event_id": "…", "chain_id": 11155111, "block_number": 1000000, "log_index": 0,
--    "event_type": "AgentRegistered", "registry": "identity"}
-- enough to route it (by chain, registry, type) and to fetch it (by event_id). The decoded data is never
-- sent: it has no size limit, NOTIFY has one (8,000 bytes), and the processor reads the row anyway.
-- Every sent column is bounded by its type, so the payload stays under about 1.5 KB whatever the row holds
-- (the largest: a 128-character id of control characters, each escaped as \u00XX).

CREATE FUNCTION public.notify_new_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('new_event', json_build_object(
        'event_id',     NEW.id,
        'chain_id',     NEW.chain_id,
        'block_number', NEW.block_number,
        'log_index',    NEW.log_index,
        'event_type',   NEW.event_type,
        'registry',     NEW.registry
    )::text);
    RETURN NULL;  -- AFTER trigger: the result is ignored
END
$$;

CREATE TRIGGER trigger_notify_new_event
    AFTER INSERT ON public.events
    FOR EACH ROW EXECUTE FUNCTION public.notify_new_event();
