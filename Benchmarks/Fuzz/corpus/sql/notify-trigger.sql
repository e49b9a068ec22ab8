-- One generic trigger function for every notifying table:
--   notify_event(channel, column, column, …)
-- sends on `channel`, for each INSERT, UPDATE and DELETE, the JSON object
--   {"operation": "INSERT", "schema": "public", "table": "messages", <column>: <value>, …}
-- with the named columns only: the row's key and the ids the SSE layer routes by. Listeners fetch the row
-- when they need more. Sending the whole row (row_to_json) would put message text in the payload, fail
-- the INSERT itself once a message passes NOTIFY's 8,000-byte limit, and leak columns nobody meant to
-- publish. On DELETE the values come from OLD (NEW is NULL there; the whole-row version sent
-- "record": null and the listener never learnt which row went).
-- Name only columns of bounded size (ids, enums, short varchars).

CREATE FUNCTION public.notify_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_row     jsonb;
    v_payload jsonb;
    v_column  text;
BEGIN
    IF TG_NARGS < 2 THEN
        RAISE EXCEPTION 'notify_event() on %.% needs a channel and at least one column', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING HINT = 'EXECUTE FUNCTION notify_event(''message_change'', ''id'')';
    END IF;
    IF TG_OP = 'DELETE' THEN
        v_row := to_jsonb(OLD);
    ELSE
        v_row := to_jsonb(NEW);
    END IF;
    v_payload := jsonb_build_object('operation', TG_OP, 'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME);
    FOR i IN 1 .. TG_NARGS - 1 LOOP
        v_column := TG_ARGV[i];
        IF NOT v_row ? v_column THEN
            RAISE EXCEPTION 'notify_event(): %.% has no column %', TG_TABLE_SCHEMA, TG_TABLE_NAME, v_column;
        END IF;
        v_payload := v_payload || jsonb_build_object(v_column, v_row -> v_column);
    END LOOP;
    PERFORM pg_notify(TG_ARGV[0], v_payload::text);
    RETURN NULL;  -- AFTER trigger: the result is ignored
END
$$;

CREATE TRIGGER notify_message_change
    AFTER INSERT OR UPDATE OR DELETE ON public.messages
    FOR EACH ROW EXECUTE FUNCTION public.notify_event('message_change', 'id', 'channel_id', 'user_id');

CREATE TRIGGER notify_reaction_change
    AFTER INSERT OR UPDATE OR DELETE ON public.reactions
    FOR EACH ROW EXECUTE FUNCTION public.notify_event('reaction_change', 'id', 'message_id', 'user_id', 'emoji');

CREATE TRIGGER notify_user_status_change
    AFTER INSERT OR UPDATE OR DELETE ON public.user_presence
    FOR EACH ROW EXECUTE FUNCTION public.notify_event('user_status_change', 'user_id', 'status');

CREATE TRIGGER notify_channel_member_change
    AFTER INSERT OR UPDATE OR DELETE ON public.channel_members
    FOR EACH ROW EXECUTE FUNCTION public.notify_event('channel_member_change', 'channel_id', 'user_id', 'role');

CREATE TRIGGER notify_channel_change
    AFTER INSERT OR UPDATE OR DELETE ON public.channels
    FOR EACH ROW EXECUTE FUNCTION public.notify_event('channel_change', 'id', 'is_private');
