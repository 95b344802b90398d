-- cancel.lua: cancel a job that is pending, scheduled or retrying.
-- KEYS[1] job (HASH)  KEYS[2] pending (ZSET)  KEYS[3] scheduled (ZSET)  KEYS[4] retrying (ZSET)  KEYS[5] events (STREAM)
-- ARGV[1] id  ARGV[2] now ms  ARGV[3] actor  ARGV[4] TTL ms of the cancelled hash (0 = keep)
-- Returns 'ok', 'not_found', or the job's current state when it cannot be cancelled (active or finished).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'not_found' end
if state ~= 'pending' and state ~= 'scheduled' and state ~= 'retrying' then return state end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finishedAt', ARGV[2], 'updatedAt', ARGV[2])
redis.call('HDEL', KEYS[1], 'runAt')
emit(KEYS[5], KEYS[1], ARGV[1], 'cancelled', 'cancelled', redis.call('HGET', KEYS[1], 'attempts'), ARGV[2], { 'actor', ARGV[3] })
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 'ok'
