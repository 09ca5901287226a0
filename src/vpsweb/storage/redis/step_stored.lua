-- A step's output stored once, its cost counted once: SET NX, and only when this call
-- stored it, the cost added to the job's spend (a job hash that is gone is not
-- re-created). Every key is the job's (one Cluster slot): a batch's counters are added
-- by batch_count.lua in the same pipeline, idempotent per job step.
-- KEYS[1] step key, KEYS[2] job hash;
-- ARGV[1] payload, ARGV[2] ttl (s), ARGV[3] cost, ARGV[4] the job hash's spend field.
-- Returns the stored output.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if tonumber(ARGV[3]) > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('HINCRBYFLOAT', KEYS[2], ARGV[4], ARGV[3])
  end
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
