-- complete.lua: finish active jobs of one queue successfully; their hashes then expire after the completed TTL.
-- KEYS[1] active (ZSET)  KEYS[2] events (STREAM)  KEYS[3] stats (HASH)
-- ARGV[1] job key prefix  ARGV[2] TTL ms (0 = keep)  ARGV[3..] per job: id, lease token, result (JSON, may be empty)
-- Returns one 1 per job, or 0 where the worker no longer held the lease (that result is dropped).
-- Finish times are Redis' clock (TIME), like the start times the leases took.
return completeAll(KEYS[1], KEYS[2], KEYS[3], ARGV[1], nowMs(), tonumber(ARGV[2]), 3, (#ARGV - 2) / 3)
