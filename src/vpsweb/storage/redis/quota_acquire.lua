-- Take a permit for one LLM call, or keep its place in the provider's queue.
-- KEYS: 1 provider hash, 2 provider in-flight zset, 3 queue zset, 4 seen zset,
--       5 flows hash, 6 batch flows zset (flow -> last ask),
--       [7 model hash, 8 model in-flight zset]
-- ARGV: 1 ticket, 2 flow, 3 batch (0/1), 4 tokens, 5 hold_s,
--       6-8 provider rpm, tpm, max_concurrent (0: none), 9-11 the model's,
--       12 stale_s, 13 resume (1: a throttled call keeps the front of its class)
-- Returns {1, permit, still waiting, room left} or {0, ahead, retry_in_s, reason}.
-- Requests go out at 95 % of the declared rate, in bursts of half a second's worth:
-- calls granted together reach the provider a little apart, and a provider's window
-- that saw them bunched would answer 429.
local PACE, BURST_S, INITIAL, RESERVE = 0.95, 0.5, 16, 4
local ACTIVE_S = 10  -- a batch flow that asked within this is active
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local ticket, flow = ARGV[1], ARGV[2]
local batch, tokens, hold = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local stale = tonumber(ARGV[12])

-- Waiters that stopped asking (their worker died) leave the queue.
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - stale)
for _, g in ipairs(gone) do
  redis.call('ZREM', KEYS[3], g)
  redis.call('ZREM', KEYS[4], g)
end

-- Place: priority class, then the flow's fair-share tag (round-robin), then arrival
-- (a counter: equal tags are served in the order they came; a resumed call, 0).
local TAG, ARRIVAL = 2 ^ 26, 2 ^ 20
local score = redis.call('ZSCORE', KEYS[3], ticket)
if not score then
  local v = tonumber(redis.call('HGET', KEYS[5], '_v') or '0')
  local tag, n
  if ARGV[13] == '1' then
    tag, n = v, 0
  else
    tag = math.max(v, tonumber(redis.call('HGET', KEYS[5], flow) or '0')) + 1
    redis.call('HSET', KEYS[5], flow, tag)
    n = redis.call('HINCRBY', KEYS[5], '_n', 1) % (ARRIVAL - 1) + 1
  end
  score = (batch * TAG + tag) * ARRIVAL + n
  redis.call('ZADD', KEYS[3], score, ticket)
  redis.call('EXPIRE', KEYS[5], 86400)
end
redis.call('ZADD', KEYS[4], now, ticket)
if batch == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - ACTIVE_S)
  redis.call('ZADD', KEYS[6], now, flow)
  redis.call('EXPIRE', KEYS[6], 3600)
end
local ahead = redis.call('ZRANK', KEYS[3], ticket)

local function refill(h, name, rate, cap)
  local level = tonumber(redis.call('HGET', h, name) or cap)
  local since = tonumber(redis.call('HGET', h, name .. '_ts') or now)
  return math.min(cap, level + math.max(0, now - since) * rate)
end

-- How many of the queue's first calls may go now, and when to ask again if not this one.
local function room(h, inflight, rpm, tpm, conc, adaptive)
  redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
  local free, wait, why = 1e9, 0, ''
  if adaptive then
    -- The provider's adaptive allowance (quota_settle.lua); unset: the declared
    -- concurrency, or a slow start from INITIAL when nothing is declared.
    local allowance = tonumber(redis.call('HGET', h, 'allowance') or '0')
    if allowance <= 0 then allowance = conc > 0 and conc or INITIAL end
    if conc == 0 or allowance < conc then conc = math.max(1, math.floor(allowance)) end
  end
  if conc > 0 then
    free = conc - redis.call('ZCARD', inflight)
    -- The head of the queue is woken by the next settlement; the rest look again
    -- the later the further back they are.
    if free <= ahead then wait, why = math.min(2, 0.5 + 0.1 * ahead), 'concurrency' end
  end
  local levels = {}
  if rpm > 0 then
    local rate = rpm / 60 * PACE
    local burst = math.max(1, rate * BURST_S)
    -- Above the burst (where it is more than one), RESERVE requests, a second's worth
    -- at most, only interactive calls may take: a batch refills to the burst as fast
    -- as before, so it loses no throughput, and a person's calls seldom wait.
    local reserve = burst >= 1.5 and math.min(RESERVE, rate) or 0
    local level = refill(h, 'req', rate, burst + reserve)
    levels.req = level
    local usable = level - (batch == 1 and reserve or 0)
    if math.floor(usable) < free then free = math.floor(usable) end
    if math.floor(usable) <= ahead then
      wait, why = math.max(wait, (ahead + 1 - usable) / rate), 'requests'
    end
  end
  if tpm > 0 then
    local rate = tpm / 60 * PACE
    local cap = math.max(rate, tokens)
    local level = refill(h, 'tok', rate, cap)
    levels.tok = level
    if level < tokens then
      free = 0
      wait, why = math.max(wait, (tokens - level) / rate), 'tokens'
    end
  end
  return free, wait, why, levels
end

local function take(h, inflight, levels, rpm, tpm)
  redis.call('ZADD', inflight, now + hold, ticket)
  if rpm > 0 then redis.call('HSET', h, 'req', levels.req - 1, 'req_ts', now) end
  if tpm > 0 then redis.call('HSET', h, 'tok', levels.tok - tokens, 'tok_ts', now) end
end

local free, wait, why, levels = room(KEYS[1], KEYS[2], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), true)
local mfree, mlevels = 1e9, nil
if KEYS[7] then
  local mwait, mwhy
  mfree, mwait, mwhy, mlevels = room(KEYS[7], KEYS[8], tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), false)
  if mfree < free then free, wait, why = mfree, mwait, mwhy end
end
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
if paused > now then
  return {0, ahead, tostring(paused - now), 'paused'}
end
if ahead >= free then
  if why == '' then why, wait = 'queue', 0.5 end
  local rpm = tonumber(ARGV[6])
  local others = batch == 1 and rpm > 0
    and redis.call('ZCOUNT', KEYS[6], now - ACTIVE_S, '+inf') - (redis.call('ZSCORE', KEYS[6], flow) and 1 or 0)
  if others and others > 0 then
    -- Beside another batch, a batch's turn is as far off as its tag is ahead of the
    -- virtual time, at least: its parked steps come back then, not all at the
    -- queue's wait (they would churn through the workers' threads and delay the
    -- other batch's steps). Alone, its own re-asks inflate its tag: the queue's wait.
    local lag = math.floor(tonumber(score) / ARRIVAL) - TAG - tonumber(redis.call('HGET', KEYS[5], '_v') or '0')
    wait = math.max(wait, lag / (rpm / 60 * PACE))
  end
  return {0, ahead, tostring(wait), why}
end

redis.call('ZREM', KEYS[3], ticket)
redis.call('ZREM', KEYS[4], ticket)
local tag = math.floor(tonumber(score) / ARRIVAL) - batch * TAG
if tag > tonumber(redis.call('HGET', KEYS[5], '_v') or '0') then
  redis.call('HSET', KEYS[5], '_v', tag)
end
take(KEYS[1], KEYS[2], levels, tonumber(ARGV[6]), tonumber(ARGV[7]))
if KEYS[7] then take(KEYS[7], KEYS[8], mlevels, tonumber(ARGV[9]), tonumber(ARGV[10])) end
redis.call('HINCRBY', KEYS[1], 'calls', 1)
return {1, ticket, redis.call('ZCARD', KEYS[3]), math.min(free - ahead - 1, 1e6)}
