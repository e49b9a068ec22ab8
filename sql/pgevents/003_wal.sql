-- pgevents WAL messages: events written to the write-ahead log instead of the journal table, for the processor's
-- `source: wal` (a logical replication slot with the pgoutput plugin). A trigger that calls
-- pg_notify(channel, payload) changes that one call to pgevents.emit_wal(channel, payload): the event is
-- transactional (it exists only if the transaction commits, in commit order), any size, and costs no table row,
-- no index and no NOTIFY lock.
--
-- The message's prefix is 'pgevents:' followed by the channel; other prefixes (other tools' messages) are
-- ignored by the processor. Safe to apply more than once; needs nothing else of pgevents.

CREATE SCHEMA IF NOT EXISTS pgevents;

CREATE OR REPLACE FUNCTION pgevents.emit_wal(p_channel text, p_payload text)
RETURNS pg_lsn
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_channel IS NULL OR p_channel = '' OR octet_length(p_channel) > 63 THEN
        RAISE EXCEPTION 'pgevents.emit_wal: the channel must have 1 to 63 bytes, got %', quote_nullable(p_channel)
            USING ERRCODE = '22023';
    END IF;
    RETURN pg_logical_emit_message(true, 'pgevents:' || p_channel, coalesce(p_payload, ''));
END
$$;

COMMENT ON FUNCTION pgevents.emit_wal(text, text) IS
    'Writes an event to the WAL as a transactional logical decoding message (prefix pgevents:<channel>), for the processor''s source: wal.';
