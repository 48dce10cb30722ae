-- Stop upserts from writing into a version being abandoned. Returns 0 and touches
-- nothing if the version is active: its flip ran, only the reply was lost (a timeout).
-- KEYS: pending, active.  ARGV: version.
if redis.call('GET', KEYS[2]) == ARGV[1] then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
