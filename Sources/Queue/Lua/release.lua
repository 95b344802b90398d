-- release.lua: give an active job back to pending without counting the attempt (worker shutdown).
-- KEYS[1] active (ZSET)  KEYS[2] job (HASH)  KEYS[3] pending (ZSET)  KEYS[4] events (STREAM)  KEYS[5] wake (LIST)
-- KEYS[6] counter (STRING)
-- ARGV[1] id  ARGV[2] lease token  ARGV[3] now ms
-- Returns 1, or 0 when the worker no longer holds the lease.
if not holds(KEYS[2], ARGV[2]) then return 0 end
local attempts = redis.call('HINCRBY', KEYS[2], 'attempts', -1)
local h = redis.call('HMGET', KEYS[2], 'priority', 'worker')
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'pending', 'updatedAt', ARGV[3])
redis.call('HDEL', KEYS[2], 'leaseUntil', 'lease', 'worker', 'startedAt')
emit(KEYS[4], KEYS[2], ARGV[1], 'released', 'pending', attempts, ARGV[3], { 'worker', h[2] })
addPending(KEYS[3], KEYS[6], ARGV[1], h[1])
wake(KEYS[5], 1)
return 1
