-- 0002_recovery: what recovery needs to never forget and never re-run (SPEC §3).

-- 0 when this journal met the job mid-life and Redis no longer held its definition: its type and
-- payload are unknown, so recovery never restores it.
ALTER TABLE job ADD COLUMN defined INTEGER NOT NULL DEFAULT 1;

-- Repeated enqueues with one idempotency key answer the first job, from the journal too (Redis down,
-- Redis emptied and not yet rebuilt).
CREATE INDEX job_by_idempotency ON job (queue, idempotencyKey, createdAt) WHERE idempotencyKey IS NOT NULL;

-- Recovery rebuilds every idempotency key still in its window, terminal jobs included.
CREATE INDEX job_idempotency_window ON job (createdAt) WHERE idempotencyKey IS NOT NULL;

-- Events whose (jobId, seq) was already journaled with different content: a divergence (Redis ran a job
-- from an older copy). Kept, counted and shown in the job's history, never silently dropped.
CREATE TABLE journalConflict (
    jobId TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    queue TEXT NOT NULL,
    worker TEXT,
    error TEXT,
    detail TEXT,
    recordedAt INTEGER NOT NULL
);
CREATE INDEX journalConflict_by_job ON journalConflict (jobId, seq);
