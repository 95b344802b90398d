-- claim.lua: complete the worker's finished jobs of one queue, then lease up to ARGV[5] of its best ready jobs
-- (strict priority, FIFO within one): a busy worker needs one call per batch of jobs, not two per job.
-- KEYS[1] pending (ZSET)  KEYS[2] active (ZSET)  KEYS[3] events (STREAM)  KEYS[4] paused (STRING)  KEYS[5] wake (LIST)
-- KEYS[6] stats (HASH)
-- ARGV[1] lease ms  ARGV[2] worker id  ARGV[3] job key prefix  ARGV[4] lease token prefix  ARGV[5] most jobs to lease
-- ARGV[6] completed TTL ms  ARGV[7] n, the jobs to complete first, then n triples (id, lease token, result)
-- ARGV[8 + 3n] L, the limits that apply to this queue (usually 0), then the limits' counter key prefix, then L times
-- 6 values: name, type ('' = any), payload JSON pointer ('' = none), rate (starts per window, 0 = none), window ms,
-- concurrency (0 = none). A job a limit holds back goes back to pending with its place (not charged an attempt), and
-- the claim takes the next one, looking at most at 2 × ARGV[5] + 32 jobs; a limit on every job of the queue (no type,
-- no key) that holds one back ends the claim at once.
-- ARGV[10 + 3n + 6L..] the job fields to return (HMGET, in order, read before the claim changes the job, except that
-- attempts, seq and runAt are given as the claim leaves them); they must include type, payload, attempts, seq, runAt.
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
local L = tonumber(ARGV[8 + 3 * n])
local limits, counterPrefix = {}, ARGV[9 + 3 * n]
for i = 0, L - 1 do
  local a = 10 + 3 * n + 6 * i
  limits[#limits + 1] = { ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]) }
end
local fields, at = {}, {}
for i = 10 + 3 * n + 6 * L, #ARGV do
  fields[#fields + 1] = ARGV[i]
  at[ARGV[i]] = #fields
end
local leased, active, heldBack, looked, full = {}, {}, {}, 0, false
while #leased < want and not full do
  if L > 0 and looked >= 2 * want + 32 then break end
  local popped = redis.call('ZPOPMIN', KEYS[1], want - #leased)
  if #popped == 0 then
    -- Nothing (else) ready: a blocked claimer wakes for new work, or looks again after its longest block (jobs a limit
    -- holds back become eligible as windows slide and slots free).
    redis.call('DEL', KEYS[5])
    break
  end
  looked = looked + #popped / 2
  for p = 1, #popped, 2 do
    local id = popped[p]
    local jobKey = ARGV[3] .. id
    local v = redis.call('HMGET', jobKey, unpack(fields))
    local charge, blocking = {}, nil
    if full then
      charge, blocking = nil, full
    elseif v[at.type] and L > 0 then
      charge, blocking = limitsAllow(limits, counterPrefix, v[at.type], v[at.payload] or 'null', now)
      -- A limit on every job of the queue is full: no later job can start either.
      if blocking and blocking[2] == '' and blocking[3] == '' then full = blocking end
    end
    if v[at.type] and not charge then
      heldBack[#heldBack + 1] = popped[p + 1]
      heldBack[#heldBack + 1] = id
      -- The first time a limit holds a job back, its history says so (`held`, detail = the limit): "why did it not run?"
      if redis.call('HGET', jobKey, 'heldBy') ~= blocking[1] then
        local seq = istr((tonumber(v[at.seq]) or 0) + 1)
        redis.call('HSET', jobKey, 'heldBy', blocking[1], 'seq', seq)
        appendEvent(KEYS[3], id, seq, 'held', 'pending', v[at.attempts] or '0', nowText, { 'detail', blocking[1] })
      end
    end
    -- A pending id whose hash is gone (purged by hand) is skipped.
    if v[at.type] and charge then
      chargeLimits(charge, jobKey, now, ARGV[4] .. ':' .. (#leased + 1))
      local attempt = istr((tonumber(v[at.attempts]) or 0) + 1)
      local seq = istr((tonumber(v[at.seq]) or 0) + 1)
      local token = ARGV[4] .. ':' .. (#leased + 1)
      redis.call('HSET', jobKey, 'state', 'active', 'attempts', attempt, 'seq', seq, 'startedAt', nowText,
        'updatedAt', nowText, 'worker', ARGV[2], 'lease', token, 'leaseUntil', deadlineText)
      if v[at.runAt] then redis.call('HDEL', jobKey, 'runAt') end
      if L > 0 then redis.call('HDEL', jobKey, 'heldBy') end
      appendEvent(KEYS[3], id, seq, 'started', 'active', attempt, nowText, { 'worker', ARGV[2] })
      v[at.attempts], v[at.seq], v[at.runAt] = attempt, seq, false
      leased[#leased + 1] = v
      active[#active + 1] = deadlineText
      active[#active + 1] = id
    end
  end
end
if #active > 0 then redis.call('ZADD', KEYS[2], unpack(active)) end
-- Held back by a limit: back in their places (same scores), untouched. When nothing could start, idle claimers block
-- (until new work, or their longest block) instead of spinning on jobs that wait for a window or a slot.
if #heldBack > 0 then
  redis.call('ZADD', KEYS[1], unpack(heldBack))
  if #leased == 0 then redis.call('DEL', KEYS[5]) end
end
return { completed, leased, nowText, deadlineText }
