-- End a job in one write: result (the first one stands), status, and its last events.
-- KEYS[1] job hash, KEYS[2] progress hash, KEYS[3] event stream, KEYS[4] result key,
-- KEYS[5..] step outputs the result makes redundant (deleted with it: each poem and
-- translation is stored once per job). Every key is the job's (one Cluster slot): the
-- job leaves the global deadlines set in the same pipeline, after this script.
-- ARGV[1] new status, ARGV[2] retention s, ARGV[3] stream max length,
-- ARGV[4] result JSON ('' for none), ARGV[5] job fields (JSON object),
-- ARGV[6] events (JSON list of {percent = number, fields = object}); the last is terminal.
-- Returns 1, or 0 when the job is unknown or had already ended (nothing is written).
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 0 end
if current == 'succeeded' or current == 'failed' or current == 'cancelled' then
  return 0
end
local ttl = tonumber(ARGV[2])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[4], ARGV[4], 'NX', 'EX', ttl)
  for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
for k, v in pairs(cjson.decode(ARGV[5])) do redis.call('HSET', KEYS[1], k, v) end
redis.call('EXPIRE', KEYS[1], ttl)
local pct = tonumber(redis.call('HGET', KEYS[2], 'progress_percent') or '0')
for _, ev in ipairs(cjson.decode(ARGV[6])) do
  if ev.percent > pct then pct = ev.percent end
  local fields = {'progress_percent', tostring(pct)}
  for k, v in pairs(ev.fields) do
    fields[#fields + 1] = k
    fields[#fields + 1] = v
  end
  redis.call('HSET', KEYS[2], unpack(fields))
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
end
redis.call('HSET', KEYS[2], 'terminal', '1')
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return 1
