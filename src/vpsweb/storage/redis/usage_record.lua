-- Count one ended job: keep its usage summary and add its counters, in one write.
-- KEYS[1] the summaries sorted set, KEYS[2] the counters hash
-- ARGV[1] summary JSON, ARGV[2] its end time (epoch s), ARGV[3] retention s,
-- ARGV[4..] counter field, amount, field, amount, ...
-- Returns 1, or 0 when this very summary was recorded already (a command retried after
-- a lost reply): the counters are added once.
local at = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if redis.call('ZADD', KEYS[1], 'NX', at, ARGV[1]) == 0 then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.3f', at - ttl))
redis.call('EXPIRE', KEYS[1], ttl)
return 1
