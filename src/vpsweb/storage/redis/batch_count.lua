-- Add a batch job's stored step to the batch's counters once: the cost (in total and
-- per currency), calls and tokens (a batch that is gone is not re-created). Runs in the
-- step's pipeline right after step_stored.lua, outside it (the batch's keys are in
-- another Cluster slot than the job's); counted once per job step, so a redelivery that
-- finds the step stored, or a retried pipeline, may send it again safely.
-- KEYS[1] the batch's counters hash, KEYS[2] the batch's set of counted job steps;
-- ARGV[1] the job step (``<job>|<step>``), ARGV[2] cost, ARGV[3] calls, ARGV[4] tokens,
-- ARGV[5] the cost's currency field (cost:CURRENCY), ARGV[6] ttl (s).
-- Returns 1 when counted now, 0 when counted before or the batch is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[6])
if tonumber(ARGV[2]) > 0 then
  redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[2])
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[5], ARGV[2])
end
redis.call('HINCRBY', KEYS[1], 'calls', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[4])
return 1
