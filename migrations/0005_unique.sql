-- Unique jobs (SPEC §8): a job's unique key, so recovery can give a restored live job its key back.
ALTER TABLE job ADD COLUMN uniqueKey TEXT;
ALTER TABLE job ADD COLUMN uniqueWhile TEXT;
