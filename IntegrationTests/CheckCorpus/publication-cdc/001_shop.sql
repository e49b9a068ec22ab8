-- A shop whose changes leave through logical replication, no trigger: Supabase Realtime and Debezium read the
-- publication cdc; the warehouse service streams everything of the inventory schema; an audit sink takes only
-- serious events.
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    tier text NOT NULL DEFAULT 'standard' CHECK (tier IN ('standard', 'gold', 'internal')),
    email text NOT NULL,                  -- personal data: never published
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled')),
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    note text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Realtime clients show what an order was before it changed: the whole old row.
ALTER TABLE orders REPLICA IDENTITY FULL;

CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    severity smallint NOT NULL CHECK (severity BETWEEN 1 AND 5),
    message text NOT NULL
);
