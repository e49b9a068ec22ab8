-- A shop's orders, journaled by pgevents' trigger (the journal is installed before these migrations run).
CREATE SCHEMA shop;

CREATE TABLE shop.orders (
    id          bigserial PRIMARY KEY,
    customer_id integer NOT NULL CHECK (customer_id > 0),
    amount      numeric(10, 2) NOT NULL,
    status      text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid', 'shipped')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
