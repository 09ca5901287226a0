-- A running candidate's check, in one round trip: the job's status, and how long until
-- the straggler policy makes it late (negative: it is; absent: no quorum yet), by
-- Redis's clock, so that workers' clocks need not agree.
-- KEYS[1] job hash, KEYS[2] progress hash. Returns {status or false, seconds or false}.
local status = redis.call('HGET', KEYS[1], 'status')
local at = redis.call('HGET', KEYS[2], 'late_at')
if not at then return {status, false} end
local now = redis.call('TIME')
local left = tonumber(at) - (tonumber(now[1]) + tonumber(now[2]) / 1e6)
return {status, string.format('%.4f', left)}
