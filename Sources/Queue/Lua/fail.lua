-- fail.lua: fail the current attempt of an active job: retrying after backoff, or dead after maxAttempts.
-- KEYS[1] active (ZSET)  KEYS[2] job (HASH)  KEYS[3] retrying (ZSET)  KEYS[4] dead (ZSET)  KEYS[5] events (STREAM)
-- KEYS[6] stats (HASH)
-- ARGV[1] id  ARGV[2] lease token  ARGV[3] now ms  ARGV[4] error  ARGV[5] jitter in [0, 1)  ARGV[6] dead TTL ms (0 = keep)
-- Returns { new state, runAt ms (0 when dead) }, or false when the worker no longer holds the lease (recorded as
-- `lease_lost` unless this lease already ended the job).
if not holds(KEYS[2], ARGV[2]) then
  leaseLost(KEYS[5], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
  return false
end
return failAttempt({ KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6] }, KEYS[2], ARGV[1], tonumber(ARGV[3]),
  ARGV[4], 'failed', tonumber(ARGV[5]), tonumber(ARGV[6]))
