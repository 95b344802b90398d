-- purge.lua: delete a dead job from the dead-letter queue. A transition (`purged`, terminal): its event
-- reaches the journal, so recovery never brings the job back; the journal keeps its history.
-- KEYS[1] job (HASH)  KEYS[2] dead (ZSET)  KEYS[3] events (STREAM)
-- ARGV[1] id  ARGV[2] now ms  ARGV[3] actor
-- Returns 'ok', 'not_found', or the job's state when it is not dead.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then return 'ok' end
  return 'not_found'
end
if state ~= 'dead' then return state end
redis.call('ZREM', KEYS[2], ARGV[1])
emit(KEYS[3], KEYS[1], ARGV[1], 'purged', 'purged', redis.call('HGET', KEYS[1], 'attempts'), ARGV[2], { 'actor', ARGV[3] })
redis.call('DEL', KEYS[1])
return 'ok'
