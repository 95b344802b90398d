-- Limits (SPEC §8): each definition as last seen in Redis, so recovery can set lost ones back.
CREATE TABLE limitRule (
  name TEXT PRIMARY KEY,
  definition TEXT NOT NULL,      -- the limit's JSON as stored in Redis
  createdAt INTEGER NOT NULL,    -- ms
  deletedAt INTEGER              -- ms
);
