SELECT 1/count(*) FROM pg_trigger WHERE tgname = 'wake_workers';
