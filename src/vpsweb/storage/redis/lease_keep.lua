-- Renew a step's lease (as lease_renew.lua) and read its job's status and straggler
-- deadline in the same round trip: the keeper's safety net under the pub/sub signals
-- (a signal missed while disconnected is seen here within one keeper round).
-- KEYS[1] lease key, KEYS[2] job hash, KEYS[3] progress hash (one job's keys);
-- ARGV[1] owner token, ARGV[2] ttl in ms.
-- Returns {1 if we hold the lease now else 0, status or false, seconds until the
-- straggler quorum makes running candidates late (Redis time) or false}.
local held = 0
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  held = 1
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  held = 1
end
local status = redis.call('HGET', KEYS[2], 'status')
local at = redis.call('HGET', KEYS[3], 'late_at')
if not at then return {held, status, false} end
local now = redis.call('TIME')
local left = tonumber(at) - (tonumber(now[1]) + tonumber(now[2]) / 1e6)
return {held, status, string.format('%.4f', left)}
