-- A help desk: three triggers on one table, all sending on the channel `tickets`.
CREATE TABLE tickets (
    id bigserial PRIMARY KEY,
    subject text NOT NULL CHECK (length(subject) <= 200),
    priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'urgent')),
    note text CHECK (length(note) <= 500)
);

-- Every change.
CREATE FUNCTION ticket_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tickets', json_build_object('op', TG_OP, 'id', coalesce(NEW.id, OLD.id))::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER ticket_changed AFTER INSERT OR UPDATE OR DELETE ON tickets FOR EACH ROW EXECUTE FUNCTION ticket_changed();

-- New urgent tickets page someone.
CREATE FUNCTION ticket_urgent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tickets', json_build_object('page', NEW.id)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER ticket_urgent AFTER INSERT ON tickets FOR EACH ROW WHEN (NEW.priority = 'urgent') EXECUTE FUNCTION ticket_urgent();

-- An agent escalates by writing a note that starts with "ESCALATE:".
CREATE FUNCTION ticket_escalated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.note LIKE 'ESCALATE:%' THEN
        PERFORM pg_notify('tickets', json_build_object('escalated', NEW.id)::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ticket_escalated AFTER UPDATE ON tickets FOR EACH ROW EXECUTE FUNCTION ticket_escalated();
