-- queued -> running, once; a job in any other state is left alone.
-- KEYS[1] job hash; ARGV[1] started_at. Returns 1 if the status changed.
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
return 1
