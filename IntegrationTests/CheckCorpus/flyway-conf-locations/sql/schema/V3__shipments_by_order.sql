-- Flyway runs this outside a transaction: V3__shipments_by_order.sql.conf says executeInTransaction=false.
CREATE INDEX CONCURRENTLY shipments_by_order ON ${shipments_table} (order_id);
