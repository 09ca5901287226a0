-- Count a candidate's end once: append its own event (for displays that list every
-- candidate), and a milestone when one is reached (the percentage moves only then).
-- KEYS[1] finished-index set, KEYS[2] progress hash, KEYS[3] event stream
-- ARGV[1] candidate index, ARGV[2] '1' succeeded / '0' failed, ARGV[3] N,
-- ARGV[4] retention s, ARGV[5] stream max length, ARGV[6] percent of the stage end,
-- ARGV[7] timestamp, ARGV[8] stage display name, ARGV[9] the candidate's own fields
-- (JSON object: variant, model, duration_s, error), ARGV[10..] milestone counts.
-- Returns {k, published} where k is the number finished (0 for a duplicate).
if redis.call('HGET', KEYS[2], 'terminal') == '1' then return {0, 0} end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return {0, 0} end
local ttl = tonumber(ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
local field = 'failed'
if ARGV[2] == '1' then field = 'successful' end
redis.call('HINCRBY', KEYS[2], field, 1)
local n = tonumber(ARGV[3])
local k = redis.call('SCARD', KEYS[1])
local outcome = 'failed'
if ARGV[2] == '1' then outcome = 'succeeded' end
local before = redis.call('HGET', KEYS[2], 'progress_percent') or '0'
local own = {
  'event', 'candidate_finished', 'stage', ARGV[8], 'status', outcome,
  'progress_percent', before, 'index', ARGV[1],
  'parallel_progress', k .. '/' .. n .. ' completed', 'ts', ARGV[7],
}
for name, value in pairs(cjson.decode(ARGV[9])) do
  own[#own + 1] = name
  own[#own + 1] = tostring(value)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(own))
redis.call('EXPIRE', KEYS[3], ttl)
local is_milestone = false
for i = 10, #ARGV do
  if tonumber(ARGV[i]) == k then is_milestone = true end
end
if not is_milestone then return {k, 0} end
local ok = tonumber(redis.call('HGET', KEYS[2], 'successful') or '0')
local bad = tonumber(redis.call('HGET', KEYS[2], 'failed') or '0')
local percent = tonumber(ARGV[6]) * k / n
local current = tonumber(redis.call('HGET', KEYS[2], 'progress_percent') or '0')
if percent > current then current = percent end
current = math.floor(current * 100 + 0.5) / 100
local status = 'running'
if k == n then status = 'completed' end
if k == n and ok == 0 then status = 'failed' end
local fields = {
  'event', 'milestone', 'stage', ARGV[8], 'status', status,
  'progress_percent', tostring(current),
  'parallel_progress', k .. '/' .. n .. ' completed',
  'successful', tostring(ok), 'failed', tostring(bad),
  'message', k .. ' of ' .. n .. ' candidates finished (' .. ok .. ' ok, ' .. bad .. ' failed)',
  'ts', ARGV[7],
}
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return {k, 1}
