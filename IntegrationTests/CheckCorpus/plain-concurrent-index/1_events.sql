CREATE TABLE events (
    id bigserial PRIMARY KEY,
    stream varchar(80) NOT NULL,
    kind varchar(40) NOT NULL,
    data jsonb NOT NULL DEFAULT '{}'
);
