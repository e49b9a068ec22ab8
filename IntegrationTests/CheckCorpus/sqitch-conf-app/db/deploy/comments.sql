-- Deploy app:comments to pg
-- requires: schema
BEGIN;

CREATE TABLE :"app_schema".comments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id bigint NOT NULL,
    body text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000)
);

CREATE FUNCTION :"app_schema".comment_posted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], json_build_object('post', NEW.post_id, 'comment', NEW.id)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER comment_posted AFTER INSERT ON :"app_schema".comments
    FOR EACH ROW EXECUTE FUNCTION :"app_schema".comment_posted(:'event_channel');

COMMIT;
