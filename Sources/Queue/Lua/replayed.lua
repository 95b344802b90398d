-- replayed.lua: notes on a job that a replay copied it (`replayed` event, detail = the new job's id; no state change).
-- KEYS[1] job (HASH)  KEYS[2] events (STREAM)
-- KEYS[3] replay seq (STRING: the last seq given to this job once Redis no longer held it)
-- ARGV[1] id  ARGV[2] new job id  ARGV[3] now ms  ARGV[4] actor
-- ARGV[5] the journal's last seq for the job  ARGV[6] its state there  ARGV[7] its attempts there  ARGV[8] KEYS[3] TTL ms
-- A job Redis still holds takes its next seq. A job it no longer holds (expired long ago) takes the next after the
-- journal's, and after any replay of it not yet journaled (KEYS[3]), so two replays never share a seq.
-- Returns the event's seq.
local h = redis.call('HMGET', KEYS[1], 'state', 'attempts')
local extra = { 'actor', ARGV[4], 'detail', ARGV[2] }
if h[1] then
  return emit(KEYS[2], KEYS[1], ARGV[1], 'replayed', h[1], h[2] or '0', ARGV[3], extra)
end
local seq = math.max(tonumber(ARGV[5]) or 0, tonumber(redis.call('GET', KEYS[3]) or '0')) + 1
redis.call('SET', KEYS[3], istr(seq), 'PX', ARGV[8])
appendEvent(KEYS[2], ARGV[1], istr(seq), 'replayed', ARGV[6], ARGV[7], ARGV[3], extra)
return seq
