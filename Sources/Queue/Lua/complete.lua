-- complete.lua: finish an active job successfully; its hash then expires after the completed TTL.
-- KEYS[1] active (ZSET)  KEYS[2] job (HASH)  KEYS[3] events (STREAM)  KEYS[4] stats (HASH)
-- ARGV[1] id  ARGV[2] lease token  ARGV[3] now ms  ARGV[4] result (JSON, may be empty)  ARGV[5] TTL ms (0 = keep)
-- Returns 1, or 0 when the worker no longer holds the lease (the result is then dropped).
-- (The lease check and the fields the event needs come from one HMGET: this runs once per job.)
local h = redis.call('HMGET', KEYS[2], 'state', 'lease', 'attempts', 'startedAt', 'worker')
if h[1] ~= 'active' or h[2] ~= ARGV[2] then return 0 end
local now = tonumber(ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'state', 'completed', 'finishedAt', ARGV[3], 'updatedAt', ARGV[3], 'result', ARGV[4])
else
  redis.call('HSET', KEYS[2], 'state', 'completed', 'finishedAt', ARGV[3], 'updatedAt', ARGV[3])
end
redis.call('HDEL', KEYS[2], 'leaseUntil', 'lease')
emit(KEYS[3], KEYS[2], ARGV[1], 'completed', 'completed', h[3], ARGV[3],
  { 'worker', h[5], 'result', ARGV[4], 'runMs', h[4] and (now - tonumber(h[4])) or false })
redis.call('HINCRBY', KEYS[4], 'completed', 1)
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return 1
