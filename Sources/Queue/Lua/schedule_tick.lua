-- schedule_tick.lua: record a schedule's last fired tick, never moving it back.
-- KEYS[1] schedule ticks (HASH name → ms)
-- ARGV[1] schedule name  ARGV[2] tick ms
-- Returns 1 when the tick was recorded, 0 when a later one already was.
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
