-- Renew a lease: extend it if we hold it, re-take it if it lapsed and is free.
-- KEYS[1] lease key; ARGV[1] owner token, ARGV[2] ttl in ms.
-- Returns 1 if we hold the lease now, 0 if another owner does.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
