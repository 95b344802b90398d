-- Schedules (SPEC §8): each definition as it was last seen in Redis, and what happened to it, tick by tick.
CREATE TABLE schedule (
  name TEXT PRIMARY KEY,
  definition TEXT NOT NULL,      -- the schedule's JSON as stored in Redis
  createdAt INTEGER NOT NULL,    -- ms
  updatedAt INTEGER NOT NULL,    -- ms
  deletedAt INTEGER,             -- ms; the row stays so the history keeps its definition
  lastTick INTEGER,              -- ms of the last tick fired
  lastJobId TEXT
);

-- created, updated, paused, resumed, deleted: a change of definition; fired: a tick's job (detail: created or
-- existing, i.e. another server fired it first); skipped: ticks the catch-up policy dropped (detail: how many).
CREATE TABLE scheduleEvent (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  at INTEGER NOT NULL,           -- ms
  event TEXT NOT NULL,
  tick INTEGER,                  -- ms of the tick (fired, skipped: the latest skipped)
  jobId TEXT,
  detail TEXT
);
CREATE INDEX scheduleEvent_name_at ON scheduleEvent (name, at);
