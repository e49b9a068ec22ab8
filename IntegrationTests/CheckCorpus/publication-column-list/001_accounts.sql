-- A column list to keep secrets out of the stream: it hides a column the billing consumer needs too.
CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    plan text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'team')),
    password_hash text NOT NULL
);
CREATE PUBLICATION billing FOR TABLE accounts (id, email) WITH (publish = 'insert, update, delete');
