-- restore.lua: set jobs of one queue back to the journal's state after Redis lost data (recovery).
-- Per job: a Redis copy at the journal's seq or later is left alone ('present'); a missing or older copy
-- (Redis restarted from an old snapshot, lost its last second of AOF, was flushed) is set to the journal's
-- state. What was acknowledged stays so: a completed or cancelled job is never put back to run, a purged job
-- or a dead one past its dead TTL is deleted, and a journal state that needs no Redis data writes none.
-- KEYS[1] pending (ZSET)  KEYS[2] scheduled (ZSET)  KEYS[3] retrying (ZSET)  KEYS[4] active (ZSET)  KEYS[5] dead (ZSET)
-- KEYS[6] events (STREAM)  KEYS[7] wake (LIST)  KEYS[8] counter (STRING)
-- ARGV[1] now ms  ARGV[2] idempotency TTL ms  ARGV[3] dead TTL ms  ARGV[4] completed TTL ms  ARGV[5] job key prefix
-- ARGV[6] idempotency key prefix  ARGV[7] fields per job (18), then per job:
--   id, type, queue, payload, priority, maxAttempts, timeout ms, backoff base ms, backoff max ms, journaled state,
--   attempts, idempotency key, createdAt ms, runAt ms (0 = none), last error, journaled seq, finishedAt ms (0 = none), result
-- Returns, per job, the state it was set to (prefixed 'stale:' when Redis held an older copy), 'present' (Redis is
-- as new as the journal) or 'skipped' (nothing to hold).
local now, idemTtl, deadTtl, doneTtl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local sets = { KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5] }
local width = tonumber(ARGV[7])
local out = {}

local function restoreOne(a)
  local j = { id = a[1], type = a[2], queue = a[3], payload = a[4], priority = a[5], maxAttempts = a[6], timeout = a[7],
    backoffBase = a[8], backoffMax = a[9], state = a[10], attempts = a[11], idem = a[12], createdAt = a[13],
    runAt = tonumber(a[14]), lastError = a[15], seq = tonumber(a[16]), finishedAt = tonumber(a[17]), result = a[18] }
  local jobKey = ARGV[5] .. j.id
  -- Idempotency keys of every job still in the window come back, terminal ones included.
  if j.idem ~= '' then
    local ttl = idemTtl - (now - tonumber(j.createdAt))
    if ttl > 0 then redis.call('SET', ARGV[6] .. j.idem, j.id, 'PX', ttl, 'NX') end
  end
  local current = redis.call('HGET', jobKey, 'seq')
  if current and tonumber(current) >= j.seq then return 'present' end
  local state, finishedAt, lastError = j.state, j.finishedAt, j.lastError
  -- A dead job is kept only while its dead TTL lasts; past it, it is gone like an expired one.
  if state == 'dead' and deadTtl > 0 and finishedAt > 0 and now - finishedAt >= deadTtl then state = 'purged' end
  local terminal = state == 'completed' or state == 'cancelled' or state == 'purged'
  if terminal and not current then return 'skipped' end
  -- A lease died with Redis: an active job goes back to pending with its attempt count as it was.
  -- If that was its last attempt, it is dead, as a lost lease would have made it.
  if state == 'active' then
    if tonumber(j.attempts) >= tonumber(j.maxAttempts) then
      state, lastError, finishedAt = 'dead', 'lease expired', now
    else
      state = 'pending'
    end
  end
  if (state == 'scheduled' or state == 'retrying') and j.runAt == 0 then state = 'pending' end
  removeFromSets(sets, j.id)
  if not current then
    redis.call('HSET', jobKey, 'id', j.id, 'type', j.type, 'queue', j.queue, 'payload', j.payload, 'priority', j.priority,
      'maxAttempts', j.maxAttempts, 'timeout', j.timeout, 'backoffBase', j.backoffBase, 'backoffMax', j.backoffMax,
      'createdAt', j.createdAt)
    if j.idem ~= '' then redis.call('HSET', jobKey, 'idempotencyKey', j.idem) end
  end
  redis.call('PERSIST', jobKey)
  redis.call('HDEL', jobKey, 'lease', 'leaseUntil', 'worker', 'runAt', 'finishedAt', 'lastError')
  redis.call('HSET', jobKey, 'state', state, 'attempts', j.attempts, 'updatedAt', now, 'seq', j.seq)
  if lastError ~= '' then redis.call('HSET', jobKey, 'lastError', lastError) end
  emit(KEYS[6], jobKey, j.id, 'restored', state, j.attempts, now, { 'detail', j.state })
  if state == 'purged' then
    redis.call('DEL', jobKey)
  elseif state == 'pending' then
    redis.call('HDEL', jobKey, 'startedAt')
    addPending(KEYS[1], KEYS[8], j.id, j.priority)
    redis.call('LPUSH', KEYS[7], '1')
  elseif state == 'scheduled' or state == 'retrying' then
    redis.call('HSET', jobKey, 'runAt', j.runAt)
    redis.call('ZADD', state == 'scheduled' and KEYS[2] or KEYS[3], j.runAt, j.id)
  else
    -- dead, completed or cancelled: finished; the hash expires as the finishing script would have set it.
    if finishedAt == 0 then finishedAt = now end
    redis.call('HSET', jobKey, 'finishedAt', finishedAt)
    if j.result ~= '' then redis.call('HSET', jobKey, 'result', j.result) end
    local ttl = deadTtl
    if state == 'completed' then ttl = doneTtl end
    if state == 'dead' then redis.call('ZADD', KEYS[5], finishedAt, j.id) end
    if ttl > 0 then redis.call('PEXPIRE', jobKey, math.max(1, ttl - (now - finishedAt))) end
  end
  if current then return 'stale:' .. state end
  return state
end

for i = 8, #ARGV, width do
  local a = {}
  for j = 0, width - 1 do a[j + 1] = ARGV[i + j] end
  out[#out + 1] = restoreOne(a)
end
-- At most WAKE_MAX tokens: a claim that finds the queue empty clears them anyway.
local extra = redis.call('LLEN', KEYS[7]) - WAKE_MAX
if extra > 0 then redis.call('LTRIM', KEYS[7], 0, WAKE_MAX - 1) end
return out
