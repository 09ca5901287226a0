-- Accept a person's answer to a parked prompt; with the stage's last answer, queue
-- the job again with a fresh deadline. Every key is the job's (one Cluster slot): on
-- 'resumed' the caller adds the deadline to the global set and the submission for the
-- dispatchers (see manual_answers.py).
-- KEYS[1] job hash, KEYS[2] pending hash, KEYS[3] answers hash.
-- ARGV[1] step key, ARGV[2] answer, ARGV[3] new deadline (epoch s), ARGV[4] retention s,
-- ARGV[5..] every step key of the stage.
-- Returns 'stored', 'resumed', 'gone', 'ended', 'answered' or 'not_pending'. An answer
-- given again to a job resumed but not started yet says 'resumed' again: the caller
-- that died before its submission was written writes it on the person's retry.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if status == 'succeeded' or status == 'failed' or status == 'cancelled' then return 'ended' end
local function all_answered()
  for i = 5, #ARGV do
    if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then return false end
  end
  return true
end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  if status == 'queued' and all_answered() then return 'resumed' end
  return 'answered'
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 'not_pending' end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
if not all_answered() then return 'stored' end
redis.call('HSET', KEYS[1], 'status', 'queued', 'deadline_at', ARGV[3])
return 'resumed'
