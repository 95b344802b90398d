-- reap.lua: fail the attempts of active jobs whose lease expired (worker killed, host gone).
-- KEYS[1] active (ZSET)  KEYS[2] retrying (ZSET)  KEYS[3] dead (ZSET)  KEYS[4] events (STREAM)  KEYS[5] stats (HASH)
-- ARGV[1] unused (leases run on Redis' clock: TIME)  ARGV[2] batch limit  ARGV[3] job key prefix  ARGV[4] jitter in [0, 1)  ARGV[5] dead TTL ms
-- Also drops dead-letter entries older than the dead TTL (their hashes have expired).
-- Returns the number of leases reaped.
local now = nowMs()
local expired = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local k = { KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5] }
for i, id in ipairs(expired) do
  local jobKey = ARGV[3] .. id
  if redis.call('HGET', jobKey, 'state') == 'active' then
    -- One jitter per call, spread over the batch by the golden ratio.
    local jitter = (tonumber(ARGV[4]) + i * 0.6180339887) % 1
    failAttempt(k, jobKey, id, now, 'lease expired', 'lease_expired', jitter, tonumber(ARGV[5]))
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
local deadTtl = tonumber(ARGV[5])
if deadTtl > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - deadTtl)) end
return #expired
