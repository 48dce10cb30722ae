-- Make the pending version active (only if we still own the lock and the pending slot).
-- In the same step, saves the import's report (ARGV[6], a JSON object) with the version
-- (meta `report`, if ARGV[7] is '1') and as the last attempt: status never shows a
-- version serving without its report, nor an older failed attempt as the latest. The
-- script appends what only it knows: `previous_version` (the version it replaced) and
-- `added` (plates new since then: the `added` set's size; null without a previous one).
-- A caller with no report passes a placeholder (`report_missing`) and ARGV[7] '0'.
-- KEYS: active, pending, lock, sources, versions, last_attempt.
-- ARGV: token, version, source, source prefix, now_ms, report JSON, '1' to keep it as the
--       version's report.
-- Returns {replaced version or 0, added or -1}.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
    return redis.error_reply('ALPR_LOCK_LOST import lock expired or taken over')
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return redis.error_reply('ALPR_LOCK_LOST pending version replaced')
end
local old = redis.call('GET', KEYS[1])
local meta = ARGV[4] .. 'v' .. ARGV[2] .. ':meta'
local added = -1
if old then added = redis.call('SCARD', ARGV[4] .. 'v' .. ARGV[2] .. ':added') end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('SADD', KEYS[4], ARGV[3])
redis.call('HSET', meta, 'state', 'active', 'imported_at', ARGV[5])
if old then redis.call('HSET', ARGV[4] .. 'v' .. old .. ':meta', 'state', 'retired') end
local report = string.sub(ARGV[6], 1, -2)
if report ~= '{' then report = report .. ',' end
if old then
    report = report .. '"previous_version":' .. old .. ',"added":' .. added .. '}'
else
    report = report .. '"previous_version":null,"added":null}'
end
if ARGV[7] == '1' then redis.call('HSET', meta, 'report', report) end
redis.call('SET', KEYS[6], report)
return {tonumber(old or '0'), added}
