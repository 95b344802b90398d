-- restore.lua: put a job back into Redis from the journal after Redis lost it (recovery).
-- KEYS[1] job (HASH)  KEYS[2] pending (ZSET)  KEYS[3] scheduled (ZSET)  KEYS[4] retrying (ZSET)  KEYS[5] dead (ZSET)
-- KEYS[6] events (STREAM)  KEYS[7] idempotency key (STRING; unused when ARGV[12] is empty)  KEYS[8] wake (LIST)
-- KEYS[9] counter (STRING)
-- ARGV[1] id  ARGV[2] type  ARGV[3] queue  ARGV[4] payload  ARGV[5] priority  ARGV[6] maxAttempts  ARGV[7] timeout ms
-- ARGV[8] backoff base ms  ARGV[9] backoff max ms  ARGV[10] journaled state  ARGV[11] attempts  ARGV[12] idempotency key
-- ARGV[13] idempotency TTL ms  ARGV[14] createdAt ms  ARGV[15] runAt ms (0 = none)  ARGV[16] last error  ARGV[17] last seq
-- ARGV[18] now ms  ARGV[19] dead TTL ms  ARGV[20] finishedAt ms (0 = none)
-- Returns the state the job was restored to, or false when Redis already has the job (nothing changes).
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local now = tonumber(ARGV[18])
local state = ARGV[10]
-- A lease died with Redis: an active job goes back to pending with its attempt count as it was.
-- If that was its last attempt, it is dead, as a lost lease would have made it.
local lastError = ARGV[16]
if state == 'active' then
  if tonumber(ARGV[11]) >= tonumber(ARGV[6]) then
    state = 'dead'
    lastError = 'lease expired'
    ARGV[20] = ARGV[18]
  else
    state = 'pending'
  end
end
local runAt = tonumber(ARGV[15])
if (state == 'scheduled' or state == 'retrying') and runAt == 0 then state = 'pending' end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'type', ARGV[2], 'queue', ARGV[3], 'payload', ARGV[4], 'priority', ARGV[5],
  'maxAttempts', ARGV[6], 'timeout', ARGV[7], 'backoffBase', ARGV[8], 'backoffMax', ARGV[9], 'state', state,
  'attempts', ARGV[11], 'createdAt', ARGV[14], 'updatedAt', now, 'seq', ARGV[17])
if lastError ~= '' then redis.call('HSET', KEYS[1], 'lastError', lastError) end
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[1], 'idempotencyKey', ARGV[12])
  local ttl = tonumber(ARGV[13]) - (now - tonumber(ARGV[14]))
  if ttl > 0 then redis.call('SET', KEYS[7], ARGV[1], 'PX', ttl, 'NX') end
end
emit(KEYS[6], KEYS[1], ARGV[1], 'restored', state, ARGV[11], now, { 'detail', ARGV[10] })
if state == 'pending' then
  addPending(KEYS[2], KEYS[9], ARGV[1], ARGV[5])
  wake(KEYS[8], 1)
elseif state == 'scheduled' then
  redis.call('HSET', KEYS[1], 'runAt', runAt)
  redis.call('ZADD', KEYS[3], runAt, ARGV[1])
elseif state == 'retrying' then
  redis.call('HSET', KEYS[1], 'runAt', runAt)
  redis.call('ZADD', KEYS[4], runAt, ARGV[1])
elseif state == 'dead' then
  local died = tonumber(ARGV[20])
  if died == 0 then died = now end
  redis.call('HSET', KEYS[1], 'finishedAt', died)
  redis.call('ZADD', KEYS[5], died, ARGV[1])
  local ttl = tonumber(ARGV[19])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], math.max(1, ttl - (now - died))) end
end
return state
