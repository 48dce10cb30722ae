-- Delete the known keys of a version (UNLINK frees big hashes in the background).
return redis.call('UNLINK', ARGV[1] .. 'meta', ARGV[1] .. 'entries', ARGV[1] .. 'fuzzy',
                  ARGV[1] .. 'added')
