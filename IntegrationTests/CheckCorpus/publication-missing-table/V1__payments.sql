-- Debezium's pattern: a publication the connector reads, naming its tables one by one
-- (publication.autocreate.mode = filtered).
CREATE TABLE payments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_ref text NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    captured_at timestamptz
);
CREATE PUBLICATION dbz_publication FOR TABLE payments;
