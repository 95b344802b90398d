-- resume.lua: let claims from a paused queue go on, waking blocked claimers if work is waiting.
-- KEYS[1] paused (STRING)  KEYS[2] pending (ZSET)  KEYS[3] wake (LIST)
-- Returns 1 if the queue was paused, 0 if it was running.
local was = redis.call('DEL', KEYS[1])
local waiting = redis.call('ZCARD', KEYS[2])
if waiting > 0 then wake(KEYS[3], waiting) end
return was
