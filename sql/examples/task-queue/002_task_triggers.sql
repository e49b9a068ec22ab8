-- task_creation_trigger: INSERT -> NOTIFY task_created
--   {"event": "task_created", "task_id": 42, "queue": "default", "status": "pending", "priority": 0}
-- task_update_trigger:   UPDATE -> NOTIFY task_updated
--   {"event": "task_updated", "task_id": 42, "queue": "default", "status": "running",
--    "old_status": "pending", "priority": 0}
-- The handler needs the id and the queue to push to Redis; status and old_status let it tell a status
-- change from any other update without a query. Input, result and error are never sent: they have no size
-- limit, and one large enough would make pg_notify raise and the application's own INSERT or UPDATE fail.
-- Every sent column is bounded (bigint, enum, varchar(64), smallint): payloads stay under about 600 bytes.
-- DELETE sends nothing. A notification is a wake-up, not the queue: after (re)connecting, the handler
-- re-enqueues the tasks still 'pending' before it relies on notifications again.

CREATE FUNCTION public.notify_task_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_created', json_build_object(
        'event',    'task_created',
        'task_id',  NEW.id,
        'queue',    NEW.queue,
        'status',   NEW.status,
        'priority', NEW.priority
    )::text);
    RETURN NULL;  -- AFTER trigger: the result is ignored
END
$$;

CREATE FUNCTION public.notify_task_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_updated', json_build_object(
        'event',      'task_updated',
        'task_id',    NEW.id,
        'queue',      NEW.queue,
        'status',     NEW.status,
        'old_status', OLD.status,
        'priority',   NEW.priority
    )::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER task_creation_trigger
    AFTER INSERT ON public.tasks
    FOR EACH ROW EXECUTE FUNCTION public.notify_task_created();

CREATE TRIGGER task_update_trigger
    AFTER UPDATE ON public.tasks
    FOR EACH ROW EXECUTE FUNCTION public.notify_task_updated();
