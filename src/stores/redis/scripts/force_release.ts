import { script } from './script.ts'

/**
 * KEYS: lock. ARGV: release channel, message.
 * Returns as RELEASE does, 0 when the lock was free.
 */
export const FORCE_RELEASE = script(`
local WAITED = '\\0waited'
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
redis.call('DEL', KEYS[1])
if string.sub(held, -#WAITED) ~= WAITED then return 1 end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 2
`)
