-- pgevents table source: a consumer that reads the user's own table by a monotonic integer key (a bigserial
-- or identity column), for teams that cannot add the journal trigger. The processor keeps its cursor here.
--
-- Out-of-order commits: a transaction may take key 10, and another key 11 and commit first. Reading
-- "key > last" at that moment would pass 10 for ever. So a read is fenced: the processor notes the highest
-- key it sees and the time (clock_timestamp(), taken after the read's snapshot), waits until no transaction
-- that started before that time is still open — every transaction that could still commit a smaller key is
-- one of them — and only then reads everything up to that key and moves its cursor there.
--
-- Seeing other sessions' transactions needs superuser or membership in pg_read_all_stats (pg_monitor
-- includes it): register_table_consumer refuses to start without it, since a fence that cannot see a
-- transaction cannot wait for it.
--
-- Needs 001_journal.sql (the schema). Safe to apply more than once.

CREATE SCHEMA IF NOT EXISTS pgevents;

CREATE TABLE IF NOT EXISTS pgevents.table_consumers (
    name       text PRIMARY KEY,
    instance   uuid NOT NULL DEFAULT gen_random_uuid(),
    relation   text NOT NULL,     -- the table, schema-qualified and quoted (as regclass::text prints it)
    key_column text NOT NULL,
    last_key   bigint NOT NULL,   -- every row with a key up to this one has been delivered
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Registers (or re-checks) a table consumer: the table must exist, the key column must be an integer, and
-- the caller must see every session's transactions. A new consumer starts before the table's first row, or
-- (p_from_start false) after its largest committed key (a smaller key still in flight then is not delivered). Returns the consumer's instance id. A consumer name is
-- bound to one table and key: registering it for another is an error.
CREATE OR REPLACE FUNCTION pgevents.register_table_consumer(
    p_name text, p_relation regclass, p_key_column name, p_from_start boolean DEFAULT true)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_type regtype;
    v_row pgevents.table_consumers;
    v_start bigint := 0;
BEGIN
    IF p_name IS NULL OR p_name = '' THEN
        RAISE EXCEPTION 'pgevents.register_table_consumer: the consumer name is empty';
    END IF;
    SELECT atttypid::regtype INTO v_type FROM pg_attribute
     WHERE attrelid = p_relation AND attname = p_key_column AND attnum > 0 AND NOT attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'pgevents: table % has no column %', p_relation, quote_ident(p_key_column)
            USING ERRCODE = 'undefined_column';
    END IF;
    IF v_type NOT IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
        RAISE EXCEPTION 'pgevents: the key column %.% is %, not an integer type', p_relation, quote_ident(p_key_column), v_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'the table source needs a monotonic integer key: a bigserial or identity column';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') THEN
        RAISE EXCEPTION 'pgevents: role % cannot see other sessions'' transactions, which the table source must wait for', current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('GRANT pg_read_all_stats TO %I', current_user);
    END IF;

    SELECT * INTO v_row FROM pgevents.table_consumers WHERE name = p_name;
    IF FOUND THEN
        IF v_row.relation <> p_relation::text OR v_row.key_column <> p_key_column THEN
            RAISE EXCEPTION 'pgevents: consumer % reads %.%, not %.%', quote_literal(p_name),
                v_row.relation, quote_ident(v_row.key_column), p_relation, quote_ident(p_key_column)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'use another consumer name, or DELETE its row from pgevents.table_consumers to start over';
        END IF;
        RETURN v_row.instance;
    END IF;
    -- From the start: below every key (not "below the smallest key visible now": a smaller one may still be
    -- in flight). From now: after the largest key committed so far.
    IF p_from_start THEN
        v_start := -9223372036854775808;
    ELSE
        EXECUTE format('SELECT coalesce(max(%I), 0) FROM %s', p_key_column, p_relation) INTO v_start;
    END IF;
    INSERT INTO pgevents.table_consumers (name, relation, key_column, last_key)
        VALUES (p_name, p_relation::text, p_key_column, v_start)
        ON CONFLICT (name) DO NOTHING;
    RETURN (SELECT instance FROM pgevents.table_consumers WHERE name = p_name);
END
$$;

-- The transactions a fence taken at p_fence still waits for: every open transaction in this database that
-- started before it, other than the caller's, and every prepared transaction (when it started is not recorded). Empty: every
-- key up to the fence's is final. Each is named by its pid and application_name, never by its query text (other
-- sessions' statements may hold data the processor's logs must not show).
DROP FUNCTION IF EXISTS pgevents.fence_waits_for(timestamptz);  -- earlier versions returned the query text
CREATE OR REPLACE FUNCTION pgevents.fence_waits_for(p_fence timestamptz)
RETURNS TABLE (pid integer, xact_start timestamptz, state text, application_name text)
LANGUAGE sql STABLE AS $$
    SELECT a.pid, a.xact_start, a.state, a.application_name
      FROM pg_stat_activity a
     WHERE a.pid <> pg_backend_pid()
       AND a.datname = current_database()
       AND a.xact_start < p_fence
       AND a.backend_type NOT IN ('autovacuum worker', 'autovacuum launcher', 'walsender', 'walreceiver')
    UNION ALL
    SELECT NULL, p.prepared, 'prepared', 'prepared transaction ' || p.gid
      FROM pg_prepared_xacts p
     WHERE p.database = current_database()
$$;

-- Moves a table consumer's cursor (after Redis has taken everything up to p_last_key).
CREATE OR REPLACE FUNCTION pgevents.ack_table(p_name text, p_last_key bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pgevents.table_consumers SET last_key = greatest(last_key, p_last_key), updated_at = now()
     WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgevents: no table consumer %', quote_literal(p_name) USING ERRCODE = 'no_data_found';
    END IF;
END
$$;
