-- A step's output stored once, its cost counted once: SET NX, and only when this call
-- stored it, the cost added to the job's spend (a job hash that is gone is not
-- re-created), and, for a batch's job, the cost (in total and per currency), calls and
-- tokens added to the batch's counters (a batch that is gone is not re-created either).
-- KEYS[1] step key, KEYS[2] job hash, KEYS[3] (optional) the batch's counters hash;
-- ARGV[1] payload, ARGV[2] ttl (s), ARGV[3] cost, ARGV[4] the job hash's spend field,
-- ARGV[5] calls, ARGV[6] tokens, ARGV[7] the cost's currency field (cost:CURRENCY).
-- Returns the stored output.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  local cost = tonumber(ARGV[3])
  if cost > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('HINCRBYFLOAT', KEYS[2], ARGV[4], ARGV[3])
  end
  if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
    if cost > 0 then
      redis.call('HINCRBYFLOAT', KEYS[3], 'spent', ARGV[3])
      redis.call('HINCRBYFLOAT', KEYS[3], ARGV[7], ARGV[3])
    end
    redis.call('HINCRBY', KEYS[3], 'calls', ARGV[5])
    redis.call('HINCRBY', KEYS[3], 'tokens', ARGV[6])
  end
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
