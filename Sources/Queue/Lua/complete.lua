-- complete.lua: finish an active job successfully; its hash then expires after the completed TTL.
-- KEYS[1] active (ZSET)  KEYS[2] job (HASH)  KEYS[3] events (STREAM)  KEYS[4] stats (HASH)
-- ARGV[1] id  ARGV[2] lease token  ARGV[3] now ms  ARGV[4] result (JSON, may be empty)  ARGV[5] TTL ms (0 = keep)
-- Returns 1, or 0 when the worker no longer holds the lease (the result is then dropped).
if not holds(KEYS[2], ARGV[2]) then return 0 end
local now = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[2], 'attempts', 'startedAt')
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'completed', 'finishedAt', now, 'updatedAt', now)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'result', ARGV[4]) end
redis.call('HDEL', KEYS[2], 'leaseUntil', 'lease')
emit(KEYS[3], KEYS[2], ARGV[1], 'completed', 'completed', h[1], now,
  { 'worker', redis.call('HGET', KEYS[2], 'worker'), 'result', ARGV[4], 'runMs', h[2] and (now - tonumber(h[2])) or false })
redis.call('HINCRBY', KEYS[4], 'completed', 1)
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return 1
