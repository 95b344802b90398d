-- progress.lua: record an active job's progress (the worker coalesces calls).
-- KEYS[1] job (HASH)  KEYS[2] events (STREAM)
-- ARGV[1] id  ARGV[2] lease token  ARGV[3] progress (JSON)  ARGV[4] now ms
-- Returns 1, or 0 when the worker no longer holds the lease.
if not holds(KEYS[1], ARGV[2]) then return 0 end
local h = redis.call('HMGET', KEYS[1], 'attempts', 'worker')
redis.call('HSET', KEYS[1], 'progress', ARGV[3], 'updatedAt', ARGV[4])
emit(KEYS[2], KEYS[1], ARGV[1], 'progress', 'active', h[1], ARGV[4], { 'worker', h[2], 'detail', ARGV[3] })
return 1
