-- Remove one entry from the active and pending versions. KEYS: active, pending.
-- ARGV: source prefix, canonical, plate, entry_id, index keys (every depth), now_ms.
-- Returns 1 if it was in the active one.
local removed = 0
local active = redis.call('GET', KEYS[1])
local pending = redis.call('GET', KEYS[2])
for _, v in ipairs({active or false, pending or false}) do
    if v then
        local base = ARGV[1] .. 'v' .. v .. ':'
        local n, empty = drop(base .. 'entries', ARGV[2], ARGV[3], ARGV[4])
        if n > 0 then redis.call('HINCRBY', base .. 'meta', 'count', -n) end
        if empty then unlink(base .. 'fuzzy', ARGV[5], ARGV[2]) end
        if v == active then
            removed = n
            redis.call('HSET', base .. 'meta', 'updated_at', ARGV[6])
        end
    end
end
return removed
