-- Deploy worker:schema to pg

BEGIN;

CREATE SCHEMA worker;

COMMIT;
