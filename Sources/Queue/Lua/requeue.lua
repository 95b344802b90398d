-- requeue.lua: put a dead or cancelled job back to pending with a fresh attempt count.
-- KEYS[1] job (HASH)  KEYS[2] dead (ZSET)  KEYS[3] pending (ZSET)  KEYS[4] events (STREAM)  KEYS[5] wake (LIST)
-- KEYS[6] counter (STRING)
-- ARGV[1] id  ARGV[2] now ms  ARGV[3] actor
-- Returns 'ok', 'not_found', or the job's current state when it is neither dead nor cancelled.
local h = redis.call('HMGET', KEYS[1], 'state', 'priority')
if not h[1] then return 'not_found' end
if h[1] ~= 'dead' and h[1] ~= 'cancelled' then return h[1] end
requeueJob({ KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6] }, KEYS[1], ARGV[1], h[2], ARGV[2], ARGV[3])
return 'ok'
