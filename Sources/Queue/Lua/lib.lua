-- lib.lua: helpers prepended to every script by Scripts.swift (not a script of its own).
-- Conventions: times are integer milliseconds since the epoch; a job's hash lives at
-- jobKeyPrefix .. id; every transition bumps the job's gap-free `seq` and appends one
-- event to the queue's stream, in the same script.

-- Streams are never capped here: a cap would trim events no journal has committed yet. Journals trim
-- what every live journal has committed; with no live journal, the scheduler caps them (see
-- RedisQueueDriver.runScheduler).
-- Wake tokens kept for blocked claimers at most (a claim that finds the queue empty clears them).
local WAKE_MAX = 1000
local BANDS = { critical = 0, high = 1, normal = 2, low = 3 }

-- A whole number as text. Numbers handed to redis.call are printed with "%.17g" (a costly float format);
-- scripts on the hot path pass text made once with this instead.
local function istr(n)
  return string.format('%d', n)
end

-- Appends one event for job `id` with the given seq (the caller stores seq in the job's hash). `extra` is a flat
-- list of field, value; empty values are left out.
local function appendEvent(eventsKey, id, seq, event, state, attempt, now, extra)
  local args = { 'XADD', eventsKey, '*',
    'job', id, 'seq', seq, 'event', event, 'state', state, 'attempt', attempt or 0, 'at', now }
  if extra then
    for i = 1, #extra, 2 do
      if extra[i + 1] ~= nil and extra[i + 1] ~= false and extra[i + 1] ~= '' then
        args[#args + 1] = extra[i]
        args[#args + 1] = extra[i + 1]
      end
    end
  end
  redis.call(unpack(args))
end

-- Appends one event for the job at jobKey, bumping its seq.
local function emit(eventsKey, jobKey, id, event, state, attempt, now, extra)
  local seq = redis.call('HINCRBY', jobKey, 'seq', 1)
  appendEvent(eventsKey, id, seq, event, state, attempt, now, extra)
  return seq
end

-- Redis' own clock in ms: leases and reaping never depend on a worker's clock.
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Removes id from every set a live job can sit in. sets = { pending, scheduled, retrying, active, dead }.
local function removeFromSets(sets, id)
  for _, key in ipairs(sets) do redis.call('ZREM', key, id) end
end

-- Puts id into the pending ZSET: strict priority bands, FIFO within a band (a per-queue counter).
local function addPending(pendingKey, counterKey, id, priority)
  local n = redis.call('INCR', counterKey)
  redis.call('ZADD', pendingKey, istr((BANDS[priority] or 2) * 281474976710656 + n), id)
end

-- Wakes claimers blocked on the queue's wake list.
local function wake(wakeKey, count)
  local have = redis.call('LLEN', wakeKey)
  local add = math.min(count or 1, WAKE_MAX - have)
  for _ = 1, add do redis.call('LPUSH', wakeKey, '1') end
end

-- True when the job is active under lease `token` (unique per claim, so a stale lease of the
-- same worker never matches a later claim).
local function holds(jobKey, token)
  local h = redis.call('HMGET', jobKey, 'state', 'lease')
  return h[1] == 'active' and h[2] == token
end

-- The value a JSON pointer (`/a/b/0`, RFC 6901) names in a job's payload, as text; '' when absent or not JSON.
local function pointerValue(payload, pointer)
  local ok, value = pcall(cjson.decode, payload)
  if not ok then return '' end
  for token in string.gmatch(pointer, '/([^/]*)') do
    token = string.gsub(string.gsub(token, '~1', '/'), '~0', '~')
    if type(value) ~= 'table' then return '' end
    local found = value[token]
    if found == nil and tonumber(token) then found = value[tonumber(token) + 1] end
    if found == nil then return '' end
    value = found
  end
  if type(value) == 'table' then return cjson.encode(value) end
  if value == cjson.null then return 'null' end
  return tostring(value)
end

-- Limits (claim.lua): `limits` holds, per limit, { name, type ('' = any), pointer ('' = none), rate, per ms,
-- concurrency } (0 = no such bound). Returns the counter keys to charge, or nil and the limit that holds the job back
-- (its fields, name first).
-- Concurrency counts jobs still active (a ZSET of job keys, pruned of jobs that stopped being active, so a slot comes
-- back when its job completes, fails, is released or is reaped after its worker died).
local function limitsAllow(limits, counterPrefix, jobType, payload, now)
  local charge = {}
  for _, l in ipairs(limits) do
    if l[2] == '' or l[2] == jobType then
      local base = counterPrefix .. l[1] .. ':' .. (l[3] ~= '' and pointerValue(payload, l[3]) or '')
      if l[4] > 0 then
        local key = base .. ':rate'
        redis.call('ZREMRANGEBYSCORE', key, '-inf', istr(now - l[5]))
        if redis.call('ZCARD', key) >= l[4] then return nil, l end
        charge[#charge + 1] = { key, l[5] }
      end
      if l[6] > 0 then
        local key = base .. ':active'
        if redis.call('ZCARD', key) >= l[6] then
          for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
            if redis.call('HGET', member, 'state') ~= 'active' then redis.call('ZREM', key, member) end
          end
          if redis.call('ZCARD', key) >= l[6] then return nil, l end
        end
        charge[#charge + 1] = { key, 0 }
      end
    end
  end
  return charge
end

-- Charges the counters `limitsAllow` returned for a job that starts now.
local function chargeLimits(charge, jobKey, now, token)
  for _, c in ipairs(charge) do
    if c[2] > 0 then
      redis.call('ZADD', c[1], now, jobKey .. '/' .. token)
      redis.call('PEXPIRE', c[1], c[2])
    else
      redis.call('ZADD', c[1], now, jobKey)
      redis.call('PEXPIRE', c[1], 86400000)
    end
  end
end

-- A run ended (complete or fail) but its lease was gone: reaped, cancelled, or lost with a Redis that failed over or
-- was rebuilt. Its outcome is dropped; the job's history says so (`lease_lost`, in its current state) so a second
-- run is explained. Nothing is written when the job is gone or this lease already ended it (a retried call: a
-- finished job keeps the lease that finished it).
local function leaseLost(eventsKey, jobKey, id, token, nowText)
  local h = redis.call('HMGET', jobKey, 'state', 'lease', 'attempts', 'seq')
  if not h[1] or h[2] == token then return end
  local seq = istr((tonumber(h[4]) or 0) + 1)
  redis.call('HSET', jobKey, 'seq', seq)
  appendEvent(eventsKey, id, seq, 'lease_lost', h[1], h[3] or '0', nowText,
    { 'worker', string.match(token, '^([^/]*)/') or false, 'error', 'the run ended after its lease was lost; its outcome was dropped' })
end

-- Fails the current attempt of an active job: retrying with backoff, or dead after maxAttempts.
-- k = { active, retrying, dead, events, stats }. Returns the new state and, if retrying, runAt.
local function failAttempt(k, jobKey, id, now, err, event, jitter, deadTtl)
  local h = redis.call('HMGET', jobKey, 'attempts', 'maxAttempts', 'backoffBase', 'backoffMax', 'worker', 'startedAt')
  local attempts = tonumber(h[1]) or 1
  local maxAttempts = tonumber(h[2]) or 3
  local base = tonumber(h[3]) or 2000
  local cap = tonumber(h[4]) or 300000
  local runMs = h[6] and (now - tonumber(h[6])) or false
  redis.call('ZREM', k[1], id)
  redis.call('HINCRBY', k[5], 'failed', 1)
  if attempts >= maxAttempts then
    redis.call('HSET', jobKey, 'state', 'dead', 'lastError', err, 'updatedAt', now, 'finishedAt', now)
    redis.call('HDEL', jobKey, 'leaseUntil', 'runAt')
    emit(k[4], jobKey, id, event, 'dead', attempts, now, { 'worker', h[5], 'error', err, 'runMs', runMs })
    emit(k[4], jobKey, id, 'dead', 'dead', attempts, now, { 'error', err })
    redis.call('ZADD', k[3], now, id)
    redis.call('HINCRBY', k[5], 'dead', 1)
    if deadTtl > 0 then redis.call('PEXPIRE', jobKey, deadTtl) end
    return { 'dead', 0 }
  end
  -- Attempt n waits min(max, base * 2^(n-1)), jittered down by up to 20%.
  local delay = math.min(cap, base * 2 ^ (attempts - 1))
  delay = math.floor(delay * (1 - 0.2 * jitter))
  local runAt = now + delay
  redis.call('HSET', jobKey, 'state', 'retrying', 'lastError', err, 'updatedAt', now, 'runAt', runAt)
  redis.call('HDEL', jobKey, 'leaseUntil')
  emit(k[4], jobKey, id, event, 'retrying', attempts, now, { 'worker', h[5], 'error', err, 'runMs', runMs })
  emit(k[4], jobKey, id, 'retry_scheduled', 'retrying', attempts, now, { 'runAt', runAt })
  redis.call('ZADD', k[2], runAt, id)
  return { 'retrying', runAt }
end


-- Completes the active job `id` if it is still held under lease `token`: 1, or 0 (the result is then dropped).
-- The caller takes completed ids out of the active set and counts them (once per call, not per job).
-- One HMGET reads the lease check and everything the event needs; seq is set, not incremented.
local function completeJob(eventsKey, jobKey, id, token, now, nowText, result, ttl)
  local h = redis.call('HMGET', jobKey, 'state', 'lease', 'attempts', 'startedAt', 'worker', 'seq')
  if h[1] ~= 'active' or h[2] ~= token then
    leaseLost(eventsKey, jobKey, id, token, nowText)
    return 0
  end
  local seq = istr((tonumber(h[6]) or 0) + 1)
  if result ~= '' then
    redis.call('HSET', jobKey, 'state', 'completed', 'finishedAt', nowText, 'updatedAt', nowText, 'seq', seq, 'result', result)
  else
    redis.call('HSET', jobKey, 'state', 'completed', 'finishedAt', nowText, 'updatedAt', nowText, 'seq', seq)
  end
  redis.call('HDEL', jobKey, 'leaseUntil')
  appendEvent(eventsKey, id, seq, 'completed', 'completed', h[3], nowText,
    { 'worker', h[5], 'result', result, 'runMs', h[4] and istr(now - tonumber(h[4])) or false })
  if ttl > 0 then redis.call('PEXPIRE', jobKey, ttl) end
  return 1
end

-- Completes `count` jobs given as ARGV triples (id, lease token, result) from ARGV[first]. Returns one 1/0 per job.
local function completeAll(activeKey, eventsKey, statsKey, jobKeyPrefix, now, ttl, first, count)
  local done, ids, nowText = {}, {}, istr(now)
  for i = 0, count - 1 do
    local a = first + i * 3
    local ok = completeJob(eventsKey, jobKeyPrefix .. ARGV[a], ARGV[a], ARGV[a + 1], now, nowText, ARGV[a + 2], ttl)
    done[#done + 1] = ok
    if ok == 1 then ids[#ids + 1] = ARGV[a] end
  end
  if #ids > 0 then
    redis.call('ZREM', activeKey, unpack(ids))
    redis.call('HINCRBY', statsKey, 'completed', #ids)
  end
  return done
end

-- Puts a dead or cancelled job back to pending with a fresh attempt count (the caller checked its state).
-- k = { dead, pending, events, wake, counter }.
local function requeueJob(k, jobKey, id, priority, now, actor)
  redis.call('ZREM', k[1], id)
  redis.call('PERSIST', jobKey)
  redis.call('HSET', jobKey, 'state', 'pending', 'attempts', '0', 'updatedAt', now)
  redis.call('HDEL', jobKey, 'finishedAt', 'worker', 'lease', 'leaseUntil', 'startedAt', 'runAt')
  emit(k[3], jobKey, id, 'requeued', 'pending', '0', now, { 'actor', actor })
  addPending(k[2], k[5], id, priority)
  wake(k[4], 1)
end
