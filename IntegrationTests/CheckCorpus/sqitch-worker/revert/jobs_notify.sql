BEGIN;
DROP TRIGGER wake_workers ON worker.jobs;
DROP FUNCTION worker.wake_workers();
COMMIT;
