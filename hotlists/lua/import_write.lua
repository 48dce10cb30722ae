-- Write a chunk of entries into the pending version. The entries come as ONE JSON
-- argument (flat [canonical, plate, entry_id, record, ...]): decoding it in C is far
-- cheaper than redis-py packing one command per entry. Refuses (-1) unless this import
-- still owns the lock and the pending slot; refreshes the lock; counts new records in
-- meta; records plates the previous version did not have.
-- KEYS: lock, pending, meta, entries, added.
-- ARGV: token, ttl_ms, version, payload, previous version's entries key or ''.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[3] then
    return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local items = cjson.decode(ARGV[4])
local old = ARGV[5]
local added = 0
for i = 1, #items, 4 do
    local c, plate = items[i], items[i + 1]
    added = added + put(KEYS[4], c, plate, items[i + 2], items[i + 3])
    if old ~= '' then
        local prev = redis.call('HGET', old, c)
        if not prev or not string.find(prev, '"plate":"' .. plate .. '"', 1, true) then
            redis.call('SADD', KEYS[5], plate)
        end
    end
end
redis.call('HINCRBY', KEYS[3], 'count', added)
return added
