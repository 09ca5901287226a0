-- Count a candidate's end once: append its own event (for displays that list every
-- candidate), and a milestone when one is reached (the percentage moves only then).
-- Both carry the percentage *after* this candidate (a follower that prints each event
-- must not see "1/3 completed" at the old value); it never goes backwards.
-- With a straggler quorum, the success that reaches it sets the moment after which
-- the candidates still running are late (`late_at` in the progress hash, Redis time).
-- KEYS[1] finished-index set, KEYS[2] progress hash, KEYS[3] event stream,
-- KEYS[4] list of the successes' durations (s)
-- ARGV[1] candidate index, ARGV[2] 'succeeded' | 'failed' | 'late', ARGV[3] N,
-- ARGV[4] retention s, ARGV[5] stream max length, ARGV[6] percent of the stage end,
-- ARGV[7] timestamp, ARGV[8] stage display name, ARGV[9] the candidate's own fields
-- (JSON object: variant, model, duration_s, error), ARGV[10] quorum (successes; 0:
-- wait for all), ARGV[11] grace factor, ARGV[12] this candidate's duration s,
-- ARGV[13..] milestone counts.
-- Returns {k, published} where k is the number finished (0 for a duplicate).
if redis.call('HGET', KEYS[2], 'terminal') == '1' then return {0, 0} end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return {0, 0} end
local ttl = tonumber(ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
local outcome = ARGV[2]
local field = outcome
if outcome == 'succeeded' then field = 'successful' end
local count = redis.call('HINCRBY', KEYS[2], field, 1)
local quorum = tonumber(ARGV[10])
if outcome == 'succeeded' and quorum > 0 then
  redis.call('RPUSH', KEYS[4], ARGV[12])
  redis.call('EXPIRE', KEYS[4], ttl)
  if count == quorum then
    local d = redis.call('LRANGE', KEYS[4], 0, -1)
    for i = 1, #d do d[i] = tonumber(d[i]) end
    table.sort(d)
    local median = d[math.floor((#d + 1) / 2)]
    if #d % 2 == 0 then median = (d[#d / 2] + d[#d / 2 + 1]) / 2 end
    local now = redis.call('TIME')
    local at = tonumber(now[1]) + tonumber(now[2]) / 1e6 + tonumber(ARGV[11]) * median
    redis.call('HSET', KEYS[2], 'late_at', string.format('%.3f', at))
  end
end
local n = tonumber(ARGV[3])
local k = redis.call('SCARD', KEYS[1])
local late = tonumber(redis.call('HGET', KEYS[2], 'late') or '0')
local counted = (k - late) .. '/' .. n .. ' completed'
if late > 0 then counted = counted .. ', ' .. late .. ' late' end
local is_milestone = false
for i = 13, #ARGV do
  if tonumber(ARGV[i]) == k then is_milestone = true end
end
local before = redis.call('HGET', KEYS[2], 'progress_percent') or '0'
local after = before
local current = tonumber(before)
if is_milestone then
  local percent = tonumber(ARGV[6]) * k / n
  if percent > current then current = percent end
  current = math.floor(current * 100 + 0.5) / 100
  after = tostring(current)
end
local own = {
  'event', 'candidate_finished', 'stage', ARGV[8], 'status', outcome,
  'progress_percent', after, 'index', ARGV[1],
  'parallel_progress', counted, 'ts', ARGV[7],
}
for name, value in pairs(cjson.decode(ARGV[9])) do
  own[#own + 1] = name
  own[#own + 1] = tostring(value)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(own))
redis.call('EXPIRE', KEYS[3], ttl)
if not is_milestone then return {k, 0} end
local ok = tonumber(redis.call('HGET', KEYS[2], 'successful') or '0')
local bad = tonumber(redis.call('HGET', KEYS[2], 'failed') or '0')
local status = 'running'
if k == n then status = 'completed' end
if k == n and ok == 0 then status = 'failed' end
local message = k .. ' of ' .. n .. ' candidates finished (' .. ok .. ' ok, ' .. bad .. ' failed'
if late > 0 then message = message .. ', ' .. late .. ' late' end
local fields = {
  'event', 'milestone', 'stage', ARGV[8], 'status', status,
  'progress_percent', tostring(current),
  'parallel_progress', counted,
  'successful', tostring(ok), 'failed', tostring(bad), 'late', tostring(late),
  'message', message .. ')',
  'ts', ARGV[7],
}
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return {k, 1}
