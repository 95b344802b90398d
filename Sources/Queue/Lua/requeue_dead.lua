-- requeue_dead.lua: requeue dead jobs of one queue in bulk, oldest death first, a bounded slice per call.
-- KEYS[1] dead (ZSET)  KEYS[2] pending (ZSET)  KEYS[3] events (STREAM)  KEYS[4] wake (LIST)  KEYS[5] counter (STRING)
-- ARGV[1] now ms  ARGV[2] actor  ARGV[3] job key prefix  ARGV[4] most jobs to requeue  ARGV[5] job type ('' = any)
-- ARGV[6] dead entries to look at  ARGV[7] index of the first (the entries before it were passed over by earlier calls)
-- Returns { requeued, matching but left (past the most), passed over (another type), looked at }. Requeued jobs
-- leave the dead set; the others stay, so the next call starts at ARGV[7] + left + passed over.
local want, looked = tonumber(ARGV[4]), 0
local requeued, left, skipped = 0, 0, 0
local start = tonumber(ARGV[7])
local ids = redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[6]) - 1)
local k = { KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5] }
for _, id in ipairs(ids) do
  looked = looked + 1
  local jobKey = ARGV[3] .. id
  local h = redis.call('HMGET', jobKey, 'state', 'priority', 'type')
  if h[1] ~= 'dead' or (ARGV[5] ~= '' and h[3] ~= ARGV[5]) then
    skipped = skipped + 1
  elseif requeued < want then
    requeueJob(k, jobKey, id, h[2], ARGV[1], ARGV[2])
    requeued = requeued + 1
  else
    left = left + 1
  end
end
return { requeued, left, skipped, looked }
