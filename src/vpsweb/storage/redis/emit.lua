-- Append one progress event atomically, keeping the percentage monotonic.
-- KEYS[1] progress hash, KEYS[2] event stream
-- ARGV[1] percent proposed, ARGV[2] retention s, ARGV[3] stream max length,
-- ARGV[4] once-field ('' for none: if set, emit only the first time),
-- ARGV[5..] event field/value pairs (without progress_percent).
-- Returns the stream id, or false when refused (duplicate, or after the terminal
-- event, which only end.lua writes).
if redis.call('HGET', KEYS[1], 'terminal') == '1' then return false end
if ARGV[4] ~= '' then
  if redis.call('HSETNX', KEYS[1], 'once:' .. ARGV[4], '1') == 0 then return false end
end
local current = tonumber(redis.call('HGET', KEYS[1], 'progress_percent') or '0')
local proposed = tonumber(ARGV[1])
if proposed > current then current = proposed end
local fields = {'progress_percent', tostring(current)}
for i = 5, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
redis.call('HSET', KEYS[1], unpack(fields))
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
local ttl = tonumber(ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return id
