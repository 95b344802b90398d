-- promote.lua: move due scheduled and retrying jobs to pending, at most ARGV[2] of each per call.
-- KEYS[1] scheduled (ZSET)  KEYS[2] retrying (ZSET)  KEYS[3] pending (ZSET)  KEYS[4] events (STREAM)
-- KEYS[5] wake (LIST)  KEYS[6] counter (STRING)
-- ARGV[1] now ms  ARGV[2] batch limit  ARGV[3] job key prefix
-- Returns the number of jobs promoted.
local now = tonumber(ARGV[1])
local promoted = 0
for z = 1, 2 do
  local due = redis.call('ZRANGE', KEYS[z], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[z], id)
    local jobKey = ARGV[3] .. id
    local h = redis.call('HMGET', jobKey, 'priority', 'attempts')
    if h[1] then
      redis.call('HSET', jobKey, 'state', 'pending', 'updatedAt', now)
      emit(KEYS[4], jobKey, id, 'promoted', 'pending', h[2], now, nil)
      addPending(KEYS[3], KEYS[6], id, h[1])
      promoted = promoted + 1
    end
  end
end
if promoted > 0 then wake(KEYS[5], promoted) end
return promoted
