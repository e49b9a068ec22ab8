-- For `pgevents process`: journal messages and reactions (after sql/pgevents/ and this example's migrations),
-- so the SSE/WebSocket fan-out reads every change from Redis streams, including those made while it was down.
CREATE TRIGGER messages_journal AFTER INSERT OR UPDATE OR DELETE ON public.messages
    FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('chat_messages');
CREATE TRIGGER reactions_journal AFTER INSERT OR UPDATE OR DELETE ON public.reactions
    FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('chat_reactions');
