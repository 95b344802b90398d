-- pause.lua: stop claims from a queue (enqueues still land). Not a job transition: no event.
-- KEYS[1] paused (STRING)  KEYS[2] wake (LIST)
-- ARGV[1] now ms
-- Returns 1 if the queue was running, 0 if it was already paused.
redis.call('DEL', KEYS[2])
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end
return 0
