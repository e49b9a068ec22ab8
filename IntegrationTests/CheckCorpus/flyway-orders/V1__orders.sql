-- An order service's outbox-style notification, written for Flyway.
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer varchar(80) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
