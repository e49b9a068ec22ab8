-- For `pgevents process`: journal new events and checkpoint moves (after sql/pgevents/ and this example's
-- migrations). The processor's cursor replaces the listener's own checkpoint bookkeeping: events committed
-- while it was down are evaluated when it comes back, in commit order.
CREATE TRIGGER events_journal AFTER INSERT ON public.events
    FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('chain_events');
CREATE TRIGGER checkpoints_journal AFTER INSERT OR UPDATE ON public.checkpoints
    FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('chain_checkpoints');
