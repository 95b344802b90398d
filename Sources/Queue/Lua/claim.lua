-- claim.lua: lease up to ARGV[6] of the best ready jobs of one queue to a worker (strict priority, FIFO within one).
-- KEYS[1] pending (ZSET)  KEYS[2] active (ZSET)  KEYS[3] events (STREAM)  KEYS[4] paused (STRING)  KEYS[5] wake (LIST)
-- ARGV[1] unused (the lease runs on Redis' clock: TIME)  ARGV[2] lease ms  ARGV[3] worker id  ARGV[4] job key prefix  ARGV[5] lease token prefix
-- ARGV[6] most jobs to lease  ARGV[7..] the job fields to return (HMGET, in order)
-- Returns a list of jobs (each the values of the fields ARGV[7..]; job i holds lease token ARGV[5]..':'..i),
-- or false when the queue is empty or paused. A queue found empty or paused also clears its wake list,
-- so a blocked claimer wakes only for new work.
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('DEL', KEYS[5])
  return false
end
local now = nowMs()
local deadline = now + tonumber(ARGV[2])
local want = tonumber(ARGV[6])
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
local leased = {}
while #leased < want do
  local popped = redis.call('ZPOPMIN', KEYS[1])
  if #popped == 0 then
    redis.call('DEL', KEYS[5])
    break
  end
  local id = popped[1]
  local jobKey = ARGV[4] .. id
  -- A pending id whose hash is gone (purged by hand) is skipped.
  if redis.call('EXISTS', jobKey) == 1 then
    local attempt = redis.call('HINCRBY', jobKey, 'attempts', 1)
    local token = ARGV[5] .. ':' .. (#leased + 1)
    redis.call('HSET', jobKey, 'state', 'active', 'startedAt', now, 'updatedAt', now, 'worker', ARGV[3], 'lease', token,
      'leaseUntil', deadline)
    redis.call('HDEL', jobKey, 'runAt')
    redis.call('ZADD', KEYS[2], deadline, id)
    emit(KEYS[3], jobKey, id, 'started', 'active', attempt, now, { 'worker', ARGV[3] })
    leased[#leased + 1] = redis.call('HMGET', jobKey, unpack(fields))
  end
end
if #leased == 0 then return false end
return leased
