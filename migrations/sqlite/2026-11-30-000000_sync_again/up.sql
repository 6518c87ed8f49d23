-- A sync asked for while one is running: the running one may have read the
-- platform before the change the caller knows of, so one more sync follows
-- it. Any number of requests meanwhile make one more sync, never more.
ALTER TABLE connection_repositories ADD COLUMN sync_again INTEGER NOT NULL DEFAULT 0;
