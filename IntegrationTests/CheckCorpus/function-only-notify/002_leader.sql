CREATE TABLE leader (name text PRIMARY KEY, elected_at timestamptz NOT NULL, expires_at timestamptz NOT NULL);

CREATE FUNCTION resign_leader(leader_name text) RETURNS void LANGUAGE sql AS $$
    DELETE FROM leader WHERE name = leader_name;
    NOTIFY leadership;
$$;
