-- claim.lua: complete the worker's finished jobs of one queue, then lease up to ARGV[5] of its best ready jobs
-- (strict priority, FIFO within one): a busy worker needs one call per batch of jobs, not two per job.
-- KEYS[1] pending (ZSET)  KEYS[2] active (ZSET)  KEYS[3] events (STREAM)  KEYS[4] paused (STRING)  KEYS[5] wake (LIST)
-- KEYS[6] stats (HASH)
-- ARGV[1] lease ms  ARGV[2] worker id  ARGV[3] job key prefix  ARGV[4] lease token prefix  ARGV[5] most jobs to lease
-- ARGV[6] completed TTL ms  ARGV[7] n, the jobs to complete first, then n triples (id, lease token, result)
-- ARGV[8 + 3n..] the job fields to return (HMGET, in order, read before the claim changes the job, except that
-- attempts, seq and runAt are given as the claim leaves them); they must include type, attempts, seq and runAt.
-- Returns { completed (one 1/0 per job to complete, as complete.lua), leased, start ms, lease deadline ms } where
-- leased lists the leased jobs (each the values of the fields; job i holds lease token ARGV[4]..':'..i). They are
-- active, started now by worker ARGV[2] with the lease until the deadline: Redis' clock (TIME).
-- A queue found empty or paused clears its wake list, so a blocked claimer wakes only for new work.
local now = nowMs()
local n = tonumber(ARGV[7])
local completed = completeAll(KEYS[2], KEYS[3], KEYS[6], ARGV[3], now, tonumber(ARGV[6]), 8, n)
local want = tonumber(ARGV[5])
local deadline = now + tonumber(ARGV[1])
local nowText, deadlineText = istr(now), istr(deadline)
if want == 0 then return { completed, {}, nowText, deadlineText } end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('DEL', KEYS[5])
  return { completed, {}, nowText, deadlineText }
end
local fields, at = {}, {}
for i = 8 + 3 * n, #ARGV do
  fields[#fields + 1] = ARGV[i]
  at[ARGV[i]] = #fields
end
local leased, active = {}, {}
while #leased < want do
  local popped = redis.call('ZPOPMIN', KEYS[1], want - #leased)
  if #popped == 0 then
    redis.call('DEL', KEYS[5])
    break
  end
  for p = 1, #popped, 2 do
    local id = popped[p]
    local jobKey = ARGV[3] .. id
    local v = redis.call('HMGET', jobKey, unpack(fields))
    -- A pending id whose hash is gone (purged by hand) is skipped.
    if v[at.type] then
      local attempt = istr((tonumber(v[at.attempts]) or 0) + 1)
      local seq = istr((tonumber(v[at.seq]) or 0) + 1)
      local token = ARGV[4] .. ':' .. (#leased + 1)
      redis.call('HSET', jobKey, 'state', 'active', 'attempts', attempt, 'seq', seq, 'startedAt', nowText,
        'updatedAt', nowText, 'worker', ARGV[2], 'lease', token, 'leaseUntil', deadlineText)
      if v[at.runAt] then redis.call('HDEL', jobKey, 'runAt') end
      appendEvent(KEYS[3], id, seq, 'started', 'active', attempt, nowText, { 'worker', ARGV[2] })
      v[at.attempts], v[at.seq], v[at.runAt] = attempt, seq, false
      leased[#leased + 1] = v
      active[#active + 1] = deadlineText
      active[#active + 1] = id
    end
  end
end
if #active > 0 then redis.call('ZADD', KEYS[2], unpack(active)) end
return { completed, leased, nowText, deadlineText }
