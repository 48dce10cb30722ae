-- Compare-and-delete: free the lock only if it is still this import's (after a stall it
-- may be another's). KEYS: lock.  ARGV: token.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
