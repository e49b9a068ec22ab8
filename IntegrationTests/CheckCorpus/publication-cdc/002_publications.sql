CREATE PUBLICATION cdc FOR TABLE customers (id, name, tier), orders WITH (publish = 'insert, update, delete');

-- The audit sink appends: inserts only, and only what matters.
CREATE PUBLICATION audit_sink FOR TABLE audit_events WHERE (severity >= 3) WITH (publish = 'insert');

CREATE SCHEMA inventory;
CREATE TABLE inventory.stock (
    sku text PRIMARY KEY CHECK (sku ~ '^[A-Z]{3}-[0-9]{4}$'),
    on_hand integer NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved integer NOT NULL DEFAULT 0
);
-- Every table of the schema, present and future, every operation.
CREATE PUBLICATION warehouse FOR TABLES IN SCHEMA inventory;
