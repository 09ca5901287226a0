-- Move a running job's deadline later (never earlier, never after it ended).
-- KEYS[1] job hash, KEYS[2] deadlines sorted set; ARGV[1] job id, ARGV[2] epoch seconds.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'cancelled' then
  return 0
end
local at = tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[1], 'deadline_at') or '0')
if at <= current then return 0 end
redis.call('HSET', KEYS[1], 'deadline_at', ARGV[2])
redis.call('ZADD', KEYS[2], at, ARGV[1])
return 1
