-- The heartbeat: extend the lock only if it is still this import's. KEYS: lock.
-- ARGV: token, ttl_ms.  Returns 0 if the lock is gone or another's.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
