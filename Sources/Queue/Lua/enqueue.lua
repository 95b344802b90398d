-- enqueue.lua: store a new job, ready now (pending) or later (scheduled).
-- KEYS[1] job (HASH)  KEYS[2] pending (ZSET)  KEYS[3] scheduled (ZSET)  KEYS[4] events (STREAM)
-- KEYS[5] idempotency key (STRING; unused when ARGV[12] is empty)  KEYS[6] wake (LIST)  KEYS[7] counter (STRING)
-- KEYS[8] marker (STRING: present while Redis is known to hold the journal's data)
-- KEYS[9] unique key → ids of the live jobs holding it (SET; unused when ARGV[17] is empty)
-- ARGV[1] id  ARGV[2] type  ARGV[3] queue  ARGV[4] payload (JSON)  ARGV[5] priority  ARGV[6] maxAttempts
-- ARGV[7] timeout ms  ARGV[8] backoff base ms  ARGV[9] backoff max ms  ARGV[10] runAt ms (0 = now)
-- ARGV[11] now ms  ARGV[12] idempotency key  ARGV[13] idempotency TTL ms  ARGV[14] actor  ARGV[15] createdAt ms
-- ARGV[16] '1' = fenced: refuse while the marker is missing (Redis lost data and is not rebuilt yet)
-- ARGV[17] unique key ('' = none)  ARGV[18] unique while: pending | active | until_complete  ARGV[19] job key prefix
-- ARGV[20] unique key TTL ms  ARGV[21] '1' = refuse while the holder is live, '0' = take the key regardless (a spooled
-- job, acknowledged before Redis could be asked)  ARGV[22] the id of the job this one replays ('' = none)
-- Returns { 1, id } when created; { 0, existing id } for a repeated idempotency key or an id already stored;
-- { 2, id } when fenced (nothing written: the journal keeps the job spooled until the rebuild is done);
-- { 3, holder id } when a job holding the unique key is in a state ARGV[18] names (nothing written; holders that
-- finished are dropped from the set on the way).
local id, now, runAt = ARGV[1], tonumber(ARGV[11]), tonumber(ARGV[10])
if ARGV[16] == '1' and redis.call('EXISTS', KEYS[8]) == 0 then return { 2, id } end
if ARGV[12] ~= '' then
  local existing = redis.call('GET', KEYS[5])
  if existing then return { 0, existing } end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return { 0, id } end
if ARGV[17] ~= '' and ARGV[21] == '1' then
  for _, holder in ipairs(redis.call('SMEMBERS', KEYS[9])) do
    local held = redis.call('HGET', ARGV[19] .. holder, 'state')
    local waiting = held == 'pending' or held == 'scheduled' or held == 'retrying'
    if not (waiting or held == 'active') then
      redis.call('SREM', KEYS[9], holder)
    elseif (ARGV[18] == 'pending' and waiting) or (ARGV[18] == 'active' and held == 'active') or ARGV[18] == 'until_complete' then
      return { 3, holder }
    end
  end
end
local state = 'pending'
if runAt > now then state = 'scheduled' end
-- Times go to Redis as the text they came in (see istr); a new job's seq is 1, its `enqueued` event.
redis.call('HSET', KEYS[1], 'id', id, 'type', ARGV[2], 'queue', ARGV[3], 'payload', ARGV[4],
  'priority', ARGV[5], 'maxAttempts', ARGV[6], 'timeout', ARGV[7], 'backoffBase', ARGV[8],
  'backoffMax', ARGV[9], 'state', state, 'attempts', '0', 'createdAt', ARGV[15], 'updatedAt', ARGV[11], 'seq', '1')
if runAt > 0 then redis.call('HSET', KEYS[1], 'runAt', ARGV[10]) end
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[1], 'idempotencyKey', ARGV[12])
  redis.call('SET', KEYS[5], id, 'PX', ARGV[13])
end
if ARGV[22] ~= '' then redis.call('HSET', KEYS[1], 'replayOf', ARGV[22]) end
if ARGV[17] ~= '' then
  redis.call('HSET', KEYS[1], 'uniqueKey', ARGV[17], 'uniqueWhile', ARGV[18])
  redis.call('SADD', KEYS[9], id)
  if redis.call('PTTL', KEYS[9]) < tonumber(ARGV[20]) then redis.call('PEXPIRE', KEYS[9], ARGV[20]) end
end
appendEvent(KEYS[4], id, '1', 'enqueued', state, '0', ARGV[11], {
  'actor', ARGV[14], 'type', ARGV[2], 'queue', ARGV[3], 'payload', ARGV[4], 'priority', ARGV[5],
  'maxAttempts', ARGV[6], 'timeout', ARGV[7], 'backoffBase', ARGV[8], 'backoffMax', ARGV[9],
  'runAt', runAt > 0 and ARGV[10] or false, 'idempotencyKey', ARGV[12], 'createdAt', ARGV[15],
  'uniqueKey', ARGV[17] ~= '' and ARGV[17] or false, 'uniqueWhile', ARGV[17] ~= '' and ARGV[18] or false,
  'replayOf', ARGV[22] ~= '' and ARGV[22] or false })
if state == 'scheduled' then
  redis.call('ZADD', KEYS[3], ARGV[10], id)
else
  addPending(KEYS[2], KEYS[7], id, ARGV[5])
  wake(KEYS[6], 1)
end
return { 1, id }
