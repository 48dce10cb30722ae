-- put: add or replace the record of (plate, entry_id) under canonical plate c; 1 if new.
-- drop: remove it; returns removed (0/1) and whether c has no record left.
-- link/unlink: add/remove c to/from the ','-list of every key of an index key list;
-- link_many: merge a ','-list of canonical plates into one key's list (linear time).
local function same_entry(record, plate, id)
    local ok, e = pcall(cjson.decode, record)
    return ok and type(e) == 'table' and e.plate == plate and e.entry_id == id
end
local function put(key, c, plate, id, rec)
    if redis.call('HSETNX', key, c, rec) == 1 then return 1 end
    local parts, new = {}, 1
    for r in string.gmatch(redis.call('HGET', key, c), '[^\n]+') do
        if new == 1 and same_entry(r, plate, id) then
            parts[#parts + 1] = rec
            new = 0
        else
            parts[#parts + 1] = r
        end
    end
    if new == 1 then parts[#parts + 1] = rec end
    redis.call('HSET', key, c, table.concat(parts, '\n'))
    return new
end
local function drop(key, c, plate, id)
    local cur = redis.call('HGET', key, c)
    if not cur then return 0, false end
    local parts, removed = {}, 0
    for r in string.gmatch(cur, '[^\n]+') do
        if removed == 0 and same_entry(r, plate, id) then removed = 1 else parts[#parts + 1] = r end
    end
    if #parts == 0 then
        redis.call('HDEL', key, c)
        return removed, true
    end
    if removed == 1 then redis.call('HSET', key, c, table.concat(parts, '\n')) end
    return removed, false
end
local function link_many(key, field, canons)
    local v = redis.call('HGET', key, field)
    if not v then
        redis.call('HSET', key, field, canons)
        return
    end
    local have, out = {}, {v}
    for x in string.gmatch(v, '[^,]+') do have[x] = true end
    for x in string.gmatch(canons, '[^,]+') do
        if not have[x] then
            have[x] = true
            out[#out + 1] = x
        end
    end
    if #out > 1 then redis.call('HSET', key, field, table.concat(out, ',')) end
end
local function link(key, index, c)
    for k in string.gmatch(index, '[^,]+') do link_many(key, k, c) end
end
local function unlink(key, index, c)
    for k in string.gmatch(index, '[^,]+') do
        local v = redis.call('HGET', key, k)
        if v then
            local keep = {}
            for x in string.gmatch(v, '[^,]+') do
                if x ~= c then keep[#keep + 1] = x end
            end
            if #keep == 0 then redis.call('HDEL', key, k)
            else redis.call('HSET', key, k, table.concat(keep, ',')) end
        end
    end
end
local function raise_depth(meta, d)
    if d > tonumber(redis.call('HGET', meta, 'depth') or '0') then
        redis.call('HSET', meta, 'depth', d)
    end
end
