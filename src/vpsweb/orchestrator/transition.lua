-- Move a job to a new status unless it already ended.
-- KEYS[1] job hash; ARGV[1] new status; ARGV[2] retention seconds;
-- ARGV[3] required current status ('' for any that has not ended);
-- ARGV[4..] field/value pairs to set with it.
-- Returns 1 if the status changed, 0 otherwise (ended, unknown, or not ARGV[3]).
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 0 end
if current == 'succeeded' or current == 'failed' or current == 'cancelled' then
  return 0
end
if ARGV[3] ~= '' and current ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
