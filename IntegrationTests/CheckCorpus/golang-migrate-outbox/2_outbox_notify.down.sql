-- Never run by check: it would remove the trigger again.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
