-- migrate:up
CREATE TABLE rooms (
    id serial PRIMARY KEY,
    slug varchar(40) NOT NULL UNIQUE
);

CREATE TABLE messages (
    id bigserial PRIMARY KEY,
    room_id integer NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    author varchar(60) NOT NULL,
    body text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE messages;
DROP TABLE rooms;
