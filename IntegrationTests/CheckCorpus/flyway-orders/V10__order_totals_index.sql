-- V10 comes after V2 (natural version order): total_cents exists only from V2 on.
CREATE INDEX orders_total_cents ON orders (total_cents);
