-- One step of sweeping a version of an older layout: SCAN (bounded by COUNT) and UNLINK
-- what matched, in one round trip. ARGV: cursor, pattern, count -> {next cursor, deleted}.
local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local found = r[2]
for i = 1, #found, 4000 do
    redis.call('UNLINK', unpack(found, i, math.min(i + 3999, #found)))
end
return {r[1], #found}
