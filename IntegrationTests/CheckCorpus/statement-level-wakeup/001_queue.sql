CREATE SCHEMA mq;

CREATE TABLE mq.q_emails (
    msg_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    read_ct integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    vt timestamptz NOT NULL DEFAULT now(),
    message jsonb
);

CREATE FUNCTION mq.notify_readers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A NULL payload arrives as an empty one: readers poll the queue when woken.
    PERFORM pg_notify('mq_emails_insert', NULL);
    RETURN NULL;
END
$$;

CREATE TRIGGER notify_readers AFTER INSERT ON mq.q_emails
    FOR EACH STATEMENT EXECUTE FUNCTION mq.notify_readers();
