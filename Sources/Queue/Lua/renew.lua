-- renew.lua: extend the lease of an active job (heartbeat). Not a transition: no event.
-- KEYS[1] active (ZSET)  KEYS[2] job (HASH)
-- ARGV[1] id  ARGV[2] lease token  ARGV[3] lease ms (the new deadline is Redis' clock + this)
-- Returns the new lease deadline ms, or 0 when the worker no longer holds the lease (expired and reaped, cancelled…).
if not holds(KEYS[2], ARGV[2]) then return 0 end
local deadline = nowMs() + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[1])
redis.call('HSET', KEYS[2], 'leaseUntil', deadline)
return deadline
