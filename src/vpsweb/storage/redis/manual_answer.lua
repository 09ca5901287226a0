-- Accept a person's answer to a parked prompt; with the stage's last answer, queue
-- the job again (a fresh deadline and a submission for the dispatchers).
-- KEYS[1] job hash, KEYS[2] pending hash, KEYS[3] answers hash, KEYS[4] submissions
-- stream, KEYS[5] deadlines sorted set.
-- ARGV[1] step key, ARGV[2] answer, ARGV[3] new deadline (epoch s), ARGV[4] retention s,
-- ARGV[5] job id, ARGV[6..] every step key of the stage.
-- Returns 'stored', 'resumed', 'gone', 'ended', 'answered' or 'not_pending'.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if status == 'succeeded' or status == 'failed' or status == 'cancelled' then return 'ended' end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 'answered' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 'not_pending' end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
for i = 6, #ARGV do
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then return 'stored' end
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'deadline_at', ARGV[3])
redis.call('ZADD', KEYS[5], tonumber(ARGV[3]), ARGV[5])
redis.call('XADD', KEYS[4], '*', 'job', ARGV[5])
return 'resumed'
