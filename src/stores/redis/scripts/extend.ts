import { script } from './script.ts'

/**
 * KEYS: lock. ARGV: owner, ttl ms.
 * Returns 1 when extended, 0 when the owner does not hold the lock.
 */
export const EXTEND = script(`
local WAITED = '\\0waited'
local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] and held ~= ARGV[1] .. WAITED then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)
