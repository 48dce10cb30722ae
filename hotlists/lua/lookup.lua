-- Hotlist candidates for a batch of reads, in one atomic step.
--
-- KEYS[1]  the set of sources (alpr:hl:sources)
-- ARGV[1]  key prefix ("alpr:hl:")
-- ARGV[2]  deepest misread index to use (0 = exact/equivalence keys only; max 2)
-- ARGV[3]  the reads' canonical keys (hotlists.plates.canonical), ','-joined, unique
--
-- For every source's ACTIVE version:
--   * entries[read key]: entries whose canonical plate equals the read's (exact and
--     OCR-equivalent matches);
--   * if the version has a misread index (meta depth > 0): fuzzy[k] for the read's
--     wildcard keys of every depth 1..depth ("w{d}:" + the read with d positions
--     replaced by "?", every choice of positions: hotlists.plates.wildcard_keys) and
--     its end keys ("x:" + the read minus its first or last character, "m:" + the
--     read), and at depth 2 the same with one position wildcarded ("x1:", "m1:"). An
--     entry allowed d extra differences is indexed under its own wildcard keys of depth
--     d and end-trimmed forms (hotlists.plates.index_keys): a read within d
--     substitutions, or one end character longer or shorter with at most d - 1 other
--     substitutions, shares a key with it.
--   * versions of layout 3 or later also index each depth-1 entry under its two halves
--     ("a7:AB1", "b7:2345": hotlists.plates.half_keys). A read within one substitution of
--     an entry shares a half with it, so a read's "w1:" keys are built and probed only
--     if one of its halves is in the index. With a few thousand urgent entries that is
--     about one read in twenty: most of this script's time was building those keys.
--     Older versions lack the halves: every read's "w1:" keys are probed.
--
-- Returns first the sources serving a non-empty version, then only sources with
-- candidates: { {source, ...}, {source, {canon, records, ...},
-- {read key, "canon,canon", ...}}, ... } where records are the entry JSON records of
-- that canonical plate, '\n'-separated. The caller verifies every candidate (edit
-- budget, state, expiry). Running as one script makes the read atomic: each source is
-- seen entirely before or entirely after an import's pointer flip.
--
-- Keys are built here rather than passed in KEYS: fine on a standalone Redis (the
-- deployment target), not on Redis Cluster.

local prefix = ARGV[1]
local want = tonumber(ARGV[2]) or 0
local reads = {}
for key in string.gmatch(ARGV[3], '[^,]+') do
    reads[#reads + 1] = key
end
-- unpack() has a stack limit: batch the fields of one HMGET.
local CHUNK = 4000

local function hmget(key, fields)
    if #fields == 0 then  -- HMGET with no field is an error: reads too short for any key
        return {}
    end
    if #fields <= CHUNK then
        return redis.call('HMGET', key, unpack(fields))
    end
    local out = {}
    for i = 1, #fields, CHUNK do
        local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + CHUNK - 1, #fields)))
        for k = 1, #part do
            out[#out + 1] = part[k]
        end
    end
    return out
end

-- Index keys of all reads but the gated "w1:" ones, built once, flat: key, owning read,
-- depth. (Ten or more keys per read: an explicit count and a local `sub` keep this loop
-- cheap; `#t` is not O(1).)
local sub = string.sub
local probe_keys, probe_owner, probe_depth
local nkeys = 0
local function add_key(key, r, d)
    nkeys = nkeys + 1
    probe_keys[nkeys] = key
    probe_owner[nkeys] = r
    probe_depth[nkeys] = d
end
local function build_probe_keys(depth)
    probe_keys, probe_owner, probe_depth, nkeys = {}, {}, {}, 0
    for r = 1, #reads do
        local word = reads[r]
        local n = #word
        if n >= 2 then
            add_key('x:' .. sub(word, 2), r, 1)
            add_key('x:' .. sub(word, 1, -2), r, 1)
            add_key('m:' .. word, r, 1)
        end
        if depth >= 2 and n > 2 then
            for i = 1, n - 1 do
                for j = i + 1, n do
                    add_key('w2:' .. sub(word, 1, i - 1) .. '?' .. sub(word, i + 1, j - 1)
                            .. '?' .. sub(word, j + 1), r, 2)
                end
            end
        end
        -- An end character plus one substitution (hotlists.plates.end_keys depth 2).
        if depth >= 2 and n > 2 then
            local shorter = {sub(word, 2), sub(word, 1, -2)}
            for _, s in ipairs(shorter) do
                for i = 1, #s do
                    add_key('x1:' .. sub(s, 1, i - 1) .. '?' .. sub(s, i + 1), r, 2)
                end
            end
        end
        if depth >= 2 and n > 1 then
            for i = 1, n do
                add_key('m1:' .. sub(word, 1, i - 1) .. '?' .. sub(word, i + 1), r, 2)
            end
        end
    end
end

-- The halves of each read (hotlists.plates.half_keys), flat: two per read of 2+ chars.
local half_keys, half_owner
local function build_half_keys()
    half_keys, half_owner = {}, {}
    local k = 0
    local tags = {}  -- length -> {"a7:", "b7:"}: built once, not per read
    for r = 1, #reads do
        local word = reads[r]
        local n = #word
        if n >= 2 then
            local h = math.floor(n / 2)
            local tag = tags[n]
            if tag == nil then
                tag = {'a' .. n .. ':', 'b' .. n .. ':'}
                tags[n] = tag
            end
            half_keys[k + 1] = tag[1] .. sub(word, 1, h)
            half_keys[k + 2] = tag[2] .. sub(word, h + 1)
            half_owner[k + 1] = r
            half_owner[k + 2] = r
            k = k + 2
        end
    end
end

-- Read r's one-wildcard keys (hotlists.plates.wildcard_keys depth 1), built once.
local w1_cache = {}
local function w1_keys(r)
    local keys = w1_cache[r]
    if keys == nil then
        keys = {}
        local word = reads[r]
        if #word > 1 then
            for i = 1, #word do
                keys[i] = 'w1:' .. sub(word, 1, i - 1) .. '?' .. sub(word, i + 1)
            end
        end
        w1_cache[r] = keys
    end
    return keys
end

-- Values of `fields` in hash `key`: an index much smaller than the probe list is read
-- whole into a Lua table (one bulk reply), any other probed field by field (HMGET).
-- Measured: a field read by HGETALL into a table costs about twice a field of HMGET.
local function probe(key, fields)
    local size = redis.call('HLEN', key)
    if size == 0 then
        return {}
    end
    if 2 * size > #fields then
        return hmget(key, fields)
    end
    local all = redis.call('HGETALL', key)
    local map = {}
    for i = 1, #all, 2 do
        map[all[i]] = all[i + 1]
    end
    local out = {}
    for i = 1, #fields do
        out[i] = map[fields[i]] or false
    end
    return out
end

-- The serving sources let the flow tell an empty answer from a vanished list (a Redis
-- restarted empty, a FLUSHALL): seen in the same atomic step as the lookup.
local serving = {}
local result = {serving}
for _, source in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local version = redis.call('GET', prefix .. source .. ':active')
    if version and tonumber(redis.call('HGET', prefix .. source .. ':v' .. version .. ':meta',
                                       'count') or '0') > 0 then
        serving[#serving + 1] = source
    end
    if version and #reads > 0 then
        local base = prefix .. source .. ':v' .. version .. ':'
        local entries = base .. 'entries'
        local records, fetched = {}, {}
        local direct = hmget(entries, reads)
        for i = 1, #reads do
            if direct[i] then
                fetched[reads[i]] = true
                records[#records + 1] = reads[i]
                records[#records + 1] = direct[i]
            end
        end
        local links = {}
        local meta = redis.call('HMGET', base .. 'meta', 'depth', 'layout')
        local depth = math.min(want, tonumber(meta[1] or '0') or 0)
        if depth > 0 then
            if probe_keys == nil then
                build_probe_keys(want)
            end
            local keys, owner, nk = {}, {}, 0
            for i = 1, nkeys do
                if probe_depth[i] <= depth then
                    nk = nk + 1
                    keys[nk] = probe_keys[i]
                    owner[nk] = probe_owner[i]
                end
            end
            -- The one-wildcard keys: of the reads whose half is indexed, or of every read.
            local fuzzy = base .. 'fuzzy'
            local gated = (tonumber(meta[2] or '0') or 0) >= 3
            local open = {}
            if gated then
                if half_keys == nil then
                    build_half_keys()
                end
                local found = hmget(fuzzy, half_keys)
                for i = 1, #half_keys do
                    if found[i] then
                        open[half_owner[i]] = true
                    end
                end
            end
            for r = 1, #reads do
                if open[r] or not gated then
                    for _, key in ipairs(w1_keys(r)) do
                        nk = nk + 1
                        keys[nk] = key
                        owner[nk] = r
                    end
                end
            end
            local linked = probe(fuzzy, keys)
            local per_read, missing = {}, {}
            for i = 1, #keys do
                if linked[i] then
                    local r = owner[i]
                    local set = per_read[r] or {}
                    per_read[r] = set
                    for canon in string.gmatch(linked[i], '[^,]+') do
                        set[canon] = true
                        if not fetched[canon] then
                            fetched[canon] = true
                            missing[#missing + 1] = canon
                        end
                    end
                end
            end
            if #missing > 0 then
                local values = hmget(entries, missing)
                for i = 1, #missing do
                    if values[i] then
                        records[#records + 1] = missing[i]
                        records[#records + 1] = values[i]
                    end
                end
            end
            for r, set in pairs(per_read) do
                local list = {}
                for canon in pairs(set) do
                    list[#list + 1] = canon
                end
                links[#links + 1] = reads[r]
                links[#links + 1] = table.concat(list, ',')
            end
        end
        if #records > 0 then
            result[#result + 1] = {source, records, links}
        end
    end
end
return result
