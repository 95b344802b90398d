-- restore.lua: set jobs of one queue back to the journal's state after Redis lost data (recovery).
-- Per job: a Redis copy at the journal's seq or later is left alone ('present'); a missing or older copy
-- (Redis restarted from an old snapshot, lost its last second of AOF, was flushed) is set to the journal's
-- state. What was acknowledged stays so: a completed or cancelled job is never put back to run, a purged job
-- or a dead one past its dead TTL is deleted, and a journal state that needs no Redis data writes none.
-- KEYS[1] pending (ZSET)  KEYS[2] scheduled (ZSET)  KEYS[3] retrying (ZSET)  KEYS[4] active (ZSET)  KEYS[5] dead (ZSET)
-- KEYS[6] events (STREAM)  KEYS[7] wake (LIST)
-- ARGV[1] now ms  ARGV[2] idempotency TTL ms  ARGV[3] dead TTL ms  ARGV[4] completed TTL ms  ARGV[5] job key prefix
-- ARGV[6] idempotency key prefix  ARGV[7] FIFO order before this call's first job (reserved on the queue's counter by
-- the caller, so calls may run in any order)  ARGV[8] fields per job (22), then per job:
--   id, type, queue, payload, priority, maxAttempts, timeout ms, backoff base ms, backoff max ms, journaled state,
--   attempts, idempotency key, createdAt ms, runAt ms (0 = none), last error, journaled seq, finishedAt ms (0 = none), result,
--   the job's unique key set (its full key name; '' = none), unique while, unique key, the job it replays ('' = none)
-- Returns, per job, the state it was set to (prefixed 'stale:' when Redis held an older copy), 'present' (Redis is
-- as new as the journal) or 'skipped' (nothing to hold).
local now, idemTtl, deadTtl, doneTtl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local sets = { KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5] }
local width = tonumber(ARGV[8])
local out = {}
local woken = 0

-- The job whose fields are ARGV[i] .. ARGV[i + 21], read in place (no table per job: recovery restores many).
local function restoreOne(i)
  local id, priority, journaled, attempts, idem = ARGV[i], ARGV[i + 4], ARGV[i + 9], ARGV[i + 10], ARGV[i + 11]
  local runAt, seq, finishedAt = tonumber(ARGV[i + 13]), tonumber(ARGV[i + 15]), tonumber(ARGV[i + 16])
  local jobKey = ARGV[5] .. id
  -- Idempotency keys of every job still in the window come back, terminal ones included.
  if idem ~= '' then
    local ttl = idemTtl - (now - tonumber(ARGV[i + 12]))
    if ttl > 0 then redis.call('SET', ARGV[6] .. idem, id, 'PX', ttl, 'NX') end
  end
  -- A live job holds its unique key again (the set is pruned of finished holders at the next enqueue with the key).
  local uniqueSet = ARGV[i + 18]
  if uniqueSet ~= '' and (journaled == 'pending' or journaled == 'scheduled' or journaled == 'retrying' or journaled == 'active') then
    redis.call('SADD', uniqueSet, id)
    if redis.call('PTTL', uniqueSet) < deadTtl then redis.call('PEXPIRE', uniqueSet, math.max(deadTtl, 1)) end
  end
  local current = redis.call('HGET', jobKey, 'seq')
  if current and tonumber(current) >= seq then return 'present' end
  local state, lastError = journaled, ARGV[i + 14]
  -- A dead job is kept only while its dead TTL lasts; past it, it is gone like an expired one.
  if state == 'dead' and deadTtl > 0 and finishedAt > 0 and now - finishedAt >= deadTtl then state = 'purged' end
  if not current and (state == 'completed' or state == 'cancelled' or state == 'purged') then return 'skipped' end
  -- A lease died with Redis: an active job goes back to pending with its attempt count as it was.
  -- If that was its last attempt, it is dead, as a lost lease would have made it.
  if state == 'active' then
    if tonumber(attempts) >= tonumber(ARGV[i + 5]) then
      state, lastError, finishedAt = 'dead', 'lease expired', now
    else
      state = 'pending'
    end
  end
  if (state == 'scheduled' or state == 'retrying') and runAt == 0 then state = 'pending' end
  seq = seq + 1
  -- The `restored` event, its seq following the journal's (as emit would write it).
  redis.call('XADD', KEYS[6], '*', 'job', id, 'seq', seq, 'event', 'restored', 'state', state, 'attempt', attempts,
    'at', ARGV[1], 'detail', journaled)
  if current then
    -- A stale copy: out of whatever set it sat in, lease and timing fields dropped (the definition stays).
    removeFromSets(sets, id)
    if state == 'purged' then
      redis.call('DEL', jobKey)
      return 'stale:purged'
    end
    redis.call('PERSIST', jobKey)
    redis.call('HDEL', jobKey, 'lease', 'leaseUntil', 'worker', 'runAt', 'finishedAt', 'lastError')
    if state == 'pending' then redis.call('HDEL', jobKey, 'startedAt') end
    redis.call('HSET', jobKey, 'state', state, 'attempts', attempts, 'updatedAt', ARGV[1], 'seq', seq)
  else
    redis.call('HSET', jobKey, 'state', state, 'attempts', attempts, 'updatedAt', ARGV[1], 'seq', seq, 'id', id, 'type', ARGV[i + 1],
      'queue', ARGV[i + 2], 'payload', ARGV[i + 3], 'priority', priority, 'maxAttempts', ARGV[i + 5], 'timeout', ARGV[i + 6],
      'backoffBase', ARGV[i + 7], 'backoffMax', ARGV[i + 8], 'createdAt', ARGV[i + 12])
    if idem ~= '' then redis.call('HSET', jobKey, 'idempotencyKey', idem) end
    if uniqueSet ~= '' then redis.call('HSET', jobKey, 'uniqueKey', ARGV[i + 20], 'uniqueWhile', ARGV[i + 19]) end
    if ARGV[i + 21] ~= '' then redis.call('HSET', jobKey, 'replayOf', ARGV[i + 21]) end
  end
  if lastError ~= '' then redis.call('HSET', jobKey, 'lastError', lastError) end
  if state == 'pending' then
    -- One FIFO slot per job of the call (reserved by the caller), whatever the other jobs' states.
    local slot = tonumber(ARGV[7]) + (i - 9) / width + 1
    redis.call('ZADD', KEYS[1], (BANDS[priority] or 2) * 281474976710656 + slot, id)
    woken = woken + 1
  elseif state == 'scheduled' or state == 'retrying' then
    redis.call('HSET', jobKey, 'runAt', runAt)
    redis.call('ZADD', state == 'scheduled' and KEYS[2] or KEYS[3], runAt, id)
  else
    -- dead, completed or cancelled: finished; the hash expires as the finishing script would have set it.
    if finishedAt == 0 then finishedAt = now end
    redis.call('HSET', jobKey, 'finishedAt', finishedAt)
    if ARGV[i + 17] ~= '' then redis.call('HSET', jobKey, 'result', ARGV[i + 17]) end
    local ttl = deadTtl
    if state == 'completed' then ttl = doneTtl end
    if state == 'dead' then redis.call('ZADD', KEYS[5], finishedAt, id) end
    if ttl > 0 then redis.call('PEXPIRE', jobKey, math.max(1, ttl - (now - finishedAt))) end
  end
  if current then return 'stale:' .. state end
  return state
end

for i = 9, #ARGV, width do out[#out + 1] = restoreOne(i) end
if woken > 0 then wake(KEYS[7], woken) end
return out
