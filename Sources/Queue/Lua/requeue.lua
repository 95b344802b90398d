-- requeue.lua: put a dead or cancelled job back to pending with a fresh attempt count.
-- KEYS[1] job (HASH)  KEYS[2] dead (ZSET)  KEYS[3] pending (ZSET)  KEYS[4] events (STREAM)  KEYS[5] wake (LIST)
-- KEYS[6] counter (STRING)
-- ARGV[1] id  ARGV[2] now ms  ARGV[3] actor
-- Returns 'ok', 'not_found', or the job's current state when it is neither dead nor cancelled.
local h = redis.call('HMGET', KEYS[1], 'state', 'priority')
if not h[1] then return 'not_found' end
if h[1] ~= 'dead' and h[1] ~= 'cancelled' then return h[1] end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempts', 0, 'updatedAt', ARGV[2])
redis.call('HDEL', KEYS[1], 'finishedAt', 'worker', 'lease', 'leaseUntil', 'startedAt', 'runAt')
emit(KEYS[4], KEYS[1], ARGV[1], 'requeued', 'pending', 0, ARGV[2], { 'actor', ARGV[3] })
addPending(KEYS[3], KEYS[6], ARGV[1], h[2])
wake(KEYS[5], 1)
return 'ok'
