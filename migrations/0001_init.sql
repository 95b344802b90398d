-- 0001_init: the journal of every job and every transition. Times are Unix milliseconds.

-- One row per job: its identity and options, and its latest known state (advanced by events).
CREATE TABLE job (
    id TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority TEXT NOT NULL,
    maxAttempts INTEGER NOT NULL,
    timeoutMs INTEGER NOT NULL,
    backoffBaseMs INTEGER NOT NULL,
    backoffMaxMs INTEGER NOT NULL,
    runAt INTEGER,
    idempotencyKey TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    createdAt INTEGER NOT NULL,
    updatedAt INTEGER NOT NULL,
    startedAt INTEGER,
    finishedAt INTEGER,
    lastError TEXT,
    result TEXT,
    progress TEXT,
    -- The seq of the last event applied to this row (events apply in seq order only).
    lastSeq INTEGER NOT NULL DEFAULT 0,
    -- 1 while the job is accepted but not yet in Redis (Redis was unreachable at enqueue).
    spooled INTEGER NOT NULL DEFAULT 0
);
-- Listing newest first, optionally by state, type or queue (keyset on createdAt, id).
CREATE INDEX job_by_created ON job (createdAt, id);
CREATE INDEX job_by_state ON job (state, createdAt, id);
CREATE INDEX job_by_type ON job (type, createdAt, id);
CREATE INDEX job_by_queue ON job (queue, createdAt, id);
CREATE INDEX job_spooled ON job (createdAt, id) WHERE spooled = 1;
CREATE INDEX job_by_finished ON job (finishedAt) WHERE finishedAt IS NOT NULL;

-- Every transition of every job; (jobId, seq) is unique, so a replay inserts nothing twice.
CREATE TABLE journalEvent (
    jobId TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    queue TEXT NOT NULL,
    type TEXT,
    worker TEXT,
    error TEXT,
    actor TEXT,
    detail TEXT,
    runMs INTEGER,
    PRIMARY KEY (jobId, seq)
) WITHOUT ROWID;
-- Per-bucket history stats (covering: the stats query never touches the table).
CREATE INDEX journalEvent_by_at ON journalEvent (at, event, queue, type, runMs);

-- How far this journal has drained each queue's Redis stream.
CREATE TABLE streamCursor (
    queue TEXT PRIMARY KEY NOT NULL,
    lastId TEXT NOT NULL,
    updatedAt INTEGER NOT NULL
);

-- This journal's identity (one row), so several servers sharing a Redis each keep their own.
CREATE TABLE journalInfo (
    id TEXT PRIMARY KEY NOT NULL,
    createdAt INTEGER NOT NULL
);
