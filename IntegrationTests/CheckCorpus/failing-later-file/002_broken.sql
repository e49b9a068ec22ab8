ALTER TABLE qc_jobs ADD COLUMN locked_at timestamptz;

-- A typo: the column is locked_at.
CREATE INDEX qc_jobs_locked ON qc_jobs (lock_at);
