ALTER TABLE connection_repositories DROP COLUMN sync_again;
