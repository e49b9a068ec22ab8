-- Deploy app:schema to pg
BEGIN;
CREATE SCHEMA :"app_schema";
COMMIT;
