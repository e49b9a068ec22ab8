-- Sequin's pattern: a sink consumes a table's changes from a publication. This one was created for an
-- append-only event log and reused for a table whose rows change state.
CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    state text NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'running', 'completed', 'discarded')),
    attempt integer NOT NULL DEFAULT 0,
    args jsonb NOT NULL DEFAULT '{}'
);
CREATE PUBLICATION sequin_pub FOR TABLE jobs WITH (publish = 'insert');
