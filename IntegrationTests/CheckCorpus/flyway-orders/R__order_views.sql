-- A repeatable migration: Flyway runs it after every versioned one.
CREATE OR REPLACE VIEW paid_orders AS
    SELECT id, customer, total_cents FROM orders WHERE status = 'paid';
