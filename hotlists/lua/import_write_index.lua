-- Merge a chunk of the misread index into the pending version: the importer groups it
-- by key first, so each key is written once per chunk however many plates share it.
-- KEYS: lock, pending, meta, fuzzy.  ARGV: token, version, payload [key, canons, ...],
-- depth.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return -1
end
local items = cjson.decode(ARGV[3])
for i = 1, #items, 2 do link_many(KEYS[4], items[i], items[i + 1]) end
raise_depth(KEYS[3], tonumber(ARGV[4]))
return #items / 2
