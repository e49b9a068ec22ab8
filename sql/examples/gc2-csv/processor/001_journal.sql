-- For `pgevents process`: the same OP,SCHEMA,TABLE,KEY,VALUE record as 002_gc2_notify.sql, appended to the
-- journal (after sql/pgevents/ and this example's migrations) instead of only NOTIFYed, so a broadcaster that
-- was down still sees every change. The processor decodes the CSV, fetches the row by its key (enrichment),
-- and appends the change with the row to a stream the WebSocket servers read.
CREATE FUNCTION public._gc2_journal() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_key   text := TG_ARGV[0];
    v_value text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('SELECT ($1).%I::text', v_key) INTO v_value USING OLD;
    ELSE
        EXECUTE format('SELECT ($1).%I::text', v_key) INTO v_value USING NEW;
    END IF;
    PERFORM pgevents.emit('gc2_changes', concat_ws(',',
        public._gc2_csv_field(TG_OP), public._gc2_csv_field(TG_TABLE_SCHEMA), public._gc2_csv_field(TG_TABLE_NAME),
        public._gc2_csv_field(v_key), public._gc2_csv_field(v_value)));
    RETURN NULL;
END
$$;
CREATE TRIGGER parcels_gc2_journal AFTER INSERT OR UPDATE OR DELETE ON public.parcels
    FOR EACH ROW EXECUTE FUNCTION public._gc2_journal('gid');
