-- A submission's addresses, written only if none changed since it looked them up
-- (compare and set: what WATCH/MULTI did, in one slot: every address shares the
-- ``{address}`` hash tag). The submission's jobs and record are written before this,
-- so an address never points at a job not yet written; its submissions after.
-- KEYS[1..n] the addresses looked up;
-- ARGV[1] ttl (s), then for each key: the job id it pointed at ('' for none, '*' for
-- not looked up: not checked), and the job id to point it at now ('' to leave it).
-- Returns 1 when written, 0 when one of them changed (nothing is written).
local n = #KEYS
for i = 1, n do
  local was = ARGV[2 * i]
  if was ~= '*' and (redis.call('GET', KEYS[i]) or '') ~= was then return 0 end
end
for i = 1, n do
  local new = ARGV[2 * i + 1]
  if new ~= '' then redis.call('SET', KEYS[i], new, 'EX', ARGV[1]) end
end
return 1
