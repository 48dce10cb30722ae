-- Upsert one entry into the active version (created if none) and the pending one.
-- KEYS: sources, active, pending, next, versions
-- ARGV: source prefix, source, canonical, plate, entry_id, record, index keys, depth,
--       now_ms, layout.  Returns 1 if new.
local active = redis.call('GET', KEYS[2])
if not active then
    local n = redis.call('INCR', KEYS[4])
    active = tostring(n)
    redis.call('SET', KEYS[2], active)
    redis.call('SADD', KEYS[5], active)
    redis.call('HSET', ARGV[1] .. 'v' .. active .. ':meta', 'count', 0, 'state', 'active',
               'started_at', ARGV[9], 'imported_at', ARGV[9], 'layout', ARGV[10], 'depth', 0)
end
redis.call('SADD', KEYS[1], ARGV[2])
local versions = {active}
local pending = redis.call('GET', KEYS[3])
if pending and pending ~= active then versions[2] = pending end
local added = 0
for i, v in ipairs(versions) do
    local base = ARGV[1] .. 'v' .. v .. ':'
    local n = put(base .. 'entries', ARGV[3], ARGV[4], ARGV[5], ARGV[6])
    if ARGV[7] ~= '' then
        link(base .. 'fuzzy', ARGV[7], ARGV[3])
        raise_depth(base .. 'meta', tonumber(ARGV[8]))
    end
    redis.call('HINCRBY', base .. 'meta', 'count', n)
    if i == 1 then added = n end
end
redis.call('HSET', ARGV[1] .. 'v' .. active .. ':meta', 'updated_at', ARGV[9])
return added
