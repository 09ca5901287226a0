-- Park a manual step's prompt for a person and mark the job waiting.
-- KEYS[1] job hash, KEYS[2] pending hash, KEYS[3] deadlines sorted set (a person has no
-- deadline: the job leaves it until answered); ARGV[1] step key, ARGV[2] prompt JSON,
-- ARGV[3] retention s, ARGV[4] job id. Returns 1, or 0 if the job is gone or ended.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'cancelled' then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'status', 'waiting')
redis.call('ZREM', KEYS[3], ARGV[4])
return 1
