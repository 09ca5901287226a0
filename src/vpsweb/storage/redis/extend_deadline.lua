-- Move a running job's deadline later (never earlier, never after it ended).
-- KEYS[1] job hash; ARGV[1] epoch seconds. The global deadlines set follows in the same
-- pipeline (ZADD XX GT: only a job still in it, only later), outside this script, so
-- that it touches the job's slot only.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'cancelled' then
  return 0
end
local at = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'deadline_at') or '0')
if at <= current then return 0 end
redis.call('HSET', KEYS[1], 'deadline_at', ARGV[1])
return 1
