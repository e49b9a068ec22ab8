CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    aggregate varchar(40) NOT NULL,
    aggregate_id uuid NOT NULL,
    event_type varchar(60) NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
