-- purge.lua: delete a dead job from the dead-letter queue (the journal keeps its history). No event:
-- the job no longer exists in Redis.
-- KEYS[1] job (HASH)  KEYS[2] dead (ZSET)
-- ARGV[1] id
-- Returns 'ok', 'not_found', or the job's state when it is not dead.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then return 'ok' end
  return 'not_found'
end
if state ~= 'dead' then return state end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 'ok'
