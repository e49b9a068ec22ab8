-- pgevents: no-transaction
CREATE INDEX CONCURRENTLY i ON t (a);
