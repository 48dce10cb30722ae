-- Allocate a version, take the lock, point `pending` at it.
-- Returns {version, active or 0, stale...}: stale = versions left by a crashed import
-- (neither active nor ours) for the caller to delete.
if not redis.call('SET', KEYS[5], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local active = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = redis.call('INCR', KEYS[3])
if n <= active then n = active + 1; redis.call('SET', KEYS[3], n) end
local out = {n, active}
for _, v in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    if tonumber(v) ~= active then out[#out + 1] = tonumber(v) end
end
redis.call('SET', KEYS[2], n)
redis.call('SADD', KEYS[4], n)
redis.call('HSET', ARGV[3] .. 'v' .. n .. ':meta', 'count', 0, 'state', 'writing',
           'started_at', ARGV[4], 'layout', ARGV[5], 'depth', 0)
return out
