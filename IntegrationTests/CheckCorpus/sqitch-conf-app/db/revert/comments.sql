-- Revert app:comments from pg (never run by check)
BEGIN;
DROP TABLE :"app_schema".comments;
COMMIT;
