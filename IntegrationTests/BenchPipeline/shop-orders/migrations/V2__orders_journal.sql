-- Every new order and every status change goes to the journal on channel ${channel}.
CREATE TRIGGER orders_journal
    AFTER INSERT OR UPDATE OF status ON shop.orders
    FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('${channel}');

-- Orders the writers' UPDATEs find (their INSERTs are journaled too, and delivered from the start).
INSERT INTO shop.orders (customer_id, amount) SELECT n, n * 1.5 FROM generate_series(1, 50) AS n;
