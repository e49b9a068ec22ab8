-- For `pgevents process`: journal every task INSERT and UPDATE (after sql/pgevents/ and this example's
-- migrations). The NOTIFY triggers of 002_task_triggers.sql stay for other listeners; the processor reads
-- the journal, so a task created while it was down is still queued when it comes back.
CREATE TRIGGER tasks_journal AFTER INSERT OR UPDATE ON public.tasks
    FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('tasks_journal');
