-- Park a manual step's prompt for a person and mark the job waiting.
-- KEYS[1] job hash, KEYS[2] pending hash; ARGV[1] step key, ARGV[2] prompt JSON,
-- ARGV[3] retention s. Returns 1, or 0 if the job is gone or ended. A person has no
-- deadline: the job leaves the global deadlines set in the same pipeline, after this
-- script (the sweeper forgets a waiting job's deadline should that write be lost).
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'cancelled' then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'status', 'waiting')
return 1
