-- A permitted call ended: return its slot, correct its tokens, adapt the allowance.
-- KEYS: 1 provider hash, 2 provider in-flight zset, 3 queue zset, [4 model hash,
--       5 model in-flight zset]
-- ARGV: 1 permit, 2 reserved tokens, 3 used tokens (-1: unknown), 4 throttled (0/1),
--       5 pause_s (-1: none), 6 waited_s, 7 provider tpm, 8 provider max_concurrent,
--       9 model tpm, 10 the permit's hold_s,
--       11 1: the first of a round trip of its own (counted: the limiter's cost)
-- The provider's allowance of calls in flight adapts as TCP's window does. With
-- nothing declared it starts at INITIAL and doubles every round of calls (slow
-- start) until the first 429; then each success adds INCREASE/allowance (about half
-- a call per round) and a 429 cuts it to CUT (SOFT_CUT when the 429 did not say a
-- window is spent) times what the provider was serving
-- when it refused. Only one cut per round: a 429 for a call granted before the last
-- cut was sent under the old allowance, and says nothing new. With a declared
-- max_concurrent it starts there and never goes above it.
local CUT, SOFT_CUT, INCREASE, INITIAL, CEILING = 0.85, 0.95, 0.5, 16, 512
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local permit = ARGV[1]
local reserved, used = tonumber(ARGV[2]), tonumber(ARGV[3])
local throttled, pause, waited = ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6])
local h = KEYS[1]

local function refund(hash, tpm)
  if tpm <= 0 or used < 0 then return end
  local rate = tpm / 60 * 0.95  -- as quota_acquire.lua's PACE
  local level = tonumber(redis.call('HGET', hash, 'tok') or '0')
  local since = tonumber(redis.call('HGET', hash, 'tok_ts') or now)
  level = level + math.max(0, now - since) * rate + math.max(0, reserved - used)
  redis.call('HSET', hash, 'tok', math.min(level, math.max(rate, reserved)), 'tok_ts', now)
end

if ARGV[11] == '1' then redis.call('HINCRBY', h, 'settled_alone', 1) end
local was_granted = redis.call('ZSCORE', KEYS[2], permit)  -- lapse time: granted + hold_s
redis.call('ZREM', KEYS[2], permit)
refund(h, tonumber(ARGV[7]))
if KEYS[4] then
  redis.call('ZREM', KEYS[5], permit)
  refund(KEYS[4], tonumber(ARGV[9]))
end
if waited > 0 then
  redis.call('HINCRBY', h, 'waits', 1)
  redis.call('HINCRBYFLOAT', h, 'wait_s', waited)
end
local conc = tonumber(ARGV[8])
local allowance = tonumber(redis.call('HGET', h, 'allowance') or '0')
local slow = redis.call('HGET', h, 'slow_start') or '0'
if allowance <= 0 then
  allowance = conc > 0 and conc or INITIAL
  slow = conc > 0 and '0' or '1'
end
local cap = conc > 0 and conc or CEILING
if throttled then
  redis.call('HINCRBY', h, 'throttled', 1)
  local last = tonumber(redis.call('HGET', h, 'last_cut') or '0')
  local granted = was_granted and (tonumber(was_granted) - tonumber(ARGV[10])) or now
  if granted >= last then
    local serving = redis.call('ZCARD', KEYS[2])
    -- A 429 that says a window is spent (pause) is a rate: cut harder than one
    -- that does not (a concurrency limit, where what was served is the limit).
    allowance = math.max(1, math.min(allowance, serving) * (pause > 0 and CUT or SOFT_CUT))
    slow = '0'
    redis.call('HSET', h, 'last_cut', now)
  end
elseif used >= 0 then
  allowance = math.min(cap, allowance + (slow == '1' and 1 or INCREASE / allowance))
end
redis.call('HSET', h, 'allowance', allowance, 'slow_start', slow)
if pause > 0 then
  local until_ = tonumber(redis.call('HGET', h, 'paused_until') or '0')
  if now + pause > until_ then redis.call('HSET', h, 'paused_until', now + pause) end
end

-- Wake the head of the queue (its first two: two slots may free at once): they ask
-- again at once instead of at their next poll.
local head = redis.call('ZRANGE', KEYS[3], 0, 1)
for _, ticket in ipairs(head) do
  local wake = KEYS[1] .. ':wake:' .. ticket  -- keys.quota_wake: the provider's slot
  redis.call('RPUSH', wake, '1')
  redis.call('PEXPIRE', wake, 5000)
end
return 1
