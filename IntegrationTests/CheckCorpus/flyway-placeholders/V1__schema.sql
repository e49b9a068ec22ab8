CREATE SCHEMA ${schema};

CREATE TABLE ${schema}.notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient varchar(120) NOT NULL,
    subject varchar(200) NOT NULL,
    read boolean NOT NULL DEFAULT false
);
