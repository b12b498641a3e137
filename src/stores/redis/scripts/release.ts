import { script } from './script.ts'

/**
 * KEYS: lock. ARGV: owner, release channel, message.
 * Returns 2 when released and published (a try was refused meanwhile, so
 * other processes may wait), 1 when released (nobody waited), 0 when the
 * owner does not hold the lock.
 */
export const RELEASE = script(`
local WAITED = '\\0waited'
local held = redis.call('GET', KEYS[1])
local mark
if held == ARGV[1] then mark = '' elseif held == ARGV[1] .. WAITED then mark = WAITED end
if not mark then return 0 end
redis.call('DEL', KEYS[1])
if mark == '' then return 1 end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 2
`)
