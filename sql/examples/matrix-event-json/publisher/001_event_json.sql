-- Publisher side: Synapse's event_json as the homeserver has it. The publication is part of the schema
-- (pgevents check creates it from the spec when it is missing).
--
-- REPLICA IDENTITY USING the unique index on event_id, so UPDATE and DELETE can be published too and the
-- subscriber (whose own key is a local seq) finds the rows by event_id.

CREATE TABLE public.event_json (
    event_id          text    NOT NULL,
    room_id           text    NOT NULL,
    internal_metadata text    NOT NULL,
    json              text    NOT NULL,
    format_version    integer,
    CONSTRAINT event_json_event_id_key UNIQUE (event_id)
);
ALTER TABLE public.event_json REPLICA IDENTITY USING INDEX event_json_event_id_key;

CREATE PUBLICATION event_json_pub FOR TABLE public.event_json (event_id, room_id, internal_metadata, json, format_version);
