-- A message queue with opt-in insert notifications, after pgmq's: the channel names the queue table and the
-- operation, the payload is empty (readers poll the queue when woken).
CREATE SCHEMA mq;

CREATE TABLE mq.q_tasks (
    msg_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    read_ct integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    vt timestamptz NOT NULL DEFAULT now(),
    message jsonb
);

CREATE FUNCTION mq.wake_listeners() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mq.' || TG_TABLE_NAME || '.' || TG_OP, NULL);
    RETURN NULL;
END
$$;

-- Turned on per queue by a function, as such extensions do.
CREATE FUNCTION mq.enable_notifications(queue text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE CONSTRAINT TRIGGER wake_listeners AFTER INSERT ON mq.%I DEFERRABLE FOR EACH ROW EXECUTE FUNCTION mq.wake_listeners()',
                   'q_' || queue);
END
$$;

SELECT mq.enable_notifications('tasks');
