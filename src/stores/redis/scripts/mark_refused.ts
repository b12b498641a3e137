import { script } from './script.ts'

/**
 * After a refused `SET NX` (no fencing): marks the lock as waited for, so
 * that its release publishes. KEYS: lock.
 * Returns the PTTL of the holder (-1 = no expiry, -2 = freed meanwhile).
 */
export const MARK_REFUSED = script(`
local WAITED = '\\0waited'
local held = redis.call('GET', KEYS[1])
if not held then return -2 end
if string.sub(held, -#WAITED) ~= WAITED then redis.call('APPEND', KEYS[1], WAITED) end
return redis.call('PTTL', KEYS[1])
`)
