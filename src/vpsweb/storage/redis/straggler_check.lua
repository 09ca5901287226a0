-- A running candidate's check, in one round trip: the job's status, how long until
-- the straggler policy makes it late (negative: it is; absent: no quorum yet), by
-- Redis's clock, so that workers' clocks need not agree, and the job's spend so far.
-- KEYS[1] job hash, KEYS[2] progress hash; ARGV[1] the job hash's spend field.
-- Returns {status or false, seconds or false, spend or false}.
local job = redis.call('HMGET', KEYS[1], 'status', ARGV[1])
local at = redis.call('HGET', KEYS[2], 'late_at')
if not at then return {job[1], false, job[2]} end
local now = redis.call('TIME')
local left = tonumber(at) - (tonumber(now[1]) + tonumber(now[2]) / 1e6)
return {job[1], string.format('%.4f', left), job[2]}
