-- GC2's real-time service LISTENs on _gc2_notify_transaction in every GC2 database and reads each payload
-- as one CSV record:
--   OP,SCHEMA,TABLE,KEY,VALUE      e.g.  UPDATE,public,parcels,gid,42
-- KEY is the name of the table's key column and VALUE the row's key; the service batches the records and,
-- for INSERT and UPDATE, fetches the rows with SELECT * FROM schema.table WHERE "KEY" IN (VALUE, …).
--
-- Each field is written as an RFC 4180 CSV field: as it is, or, when it holds a comma, a double quote, a
-- CR or an LF, in double quotes with its double quotes doubled. So a schema, table or column whose name
-- holds a comma, a quote or a newline, or a key value that does, cannot split or merge fields; joining
-- the fields with bare commas (the naive version) would. The row itself is never sent (only its key), so
-- the record is a few hundred bytes at most: five fields, each at most 63 bytes (NAMEDATALEN) or a key.
-- DELETE takes the key from OLD (NEW is NULL there).
--
-- The key column is the trigger's argument, or, without one, the table's single-column primary key. Use
-- an integer key: GC2 splices VALUE into its IN list unquoted.

-- One CSV field (RFC 4180). NULL becomes the empty field.
CREATE FUNCTION public._gc2_csv_field(p_value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_value IS NULL THEN ''
        WHEN p_value ~ '[,"\r\n]' THEN '"' || replace(p_value, '"', '""') || '"'
        ELSE p_value
    END
$$;

CREATE FUNCTION public._gc2_notify_transaction() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_key    text;
    v_value  text;
    v_single boolean;
BEGIN
    IF TG_NARGS > 0 THEN
        v_key := TG_ARGV[0];
    ELSE
        SELECT min(a.attname), count(*) = 1
          INTO v_key, v_single
          FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = TG_RELID AND i.indisprimary;
        IF v_key IS NULL OR NOT v_single THEN
            RAISE EXCEPTION '_gc2_notify_transaction(): %.% has no single-column primary key', TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING HINT = 'Name the key column: EXECUTE FUNCTION _gc2_notify_transaction(''gid'')';
        END IF;
    END IF;

    IF TG_OP = 'DELETE' THEN
        EXECUTE format('SELECT ($1).%I::text', v_key) INTO v_value USING OLD;
    ELSE
        EXECUTE format('SELECT ($1).%I::text', v_key) INTO v_value USING NEW;
    END IF;

    PERFORM pg_notify('_gc2_notify_transaction', concat_ws(',',
        public._gc2_csv_field(TG_OP),
        public._gc2_csv_field(TG_TABLE_SCHEMA),
        public._gc2_csv_field(TG_TABLE_NAME),
        public._gc2_csv_field(v_key),
        public._gc2_csv_field(v_value)));
    RETURN NULL;  -- AFTER trigger: the result is ignored
END
$$;

CREATE TRIGGER _gc2_notify_transaction_trigger
    AFTER INSERT OR UPDATE OR DELETE ON public.parcels
    FOR EACH ROW EXECUTE FUNCTION public._gc2_notify_transaction();
