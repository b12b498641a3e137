import { script } from './script.ts'

/**
 * KEYS: lock, fencing counter. Read-only.
 * Returns nil when the key is free, else {value of the lock (its owner,
 * maybe marked as waited for), PTTL, counter or nil}.
 */
export const INSPECT = script(`
local held = redis.call('GET', KEYS[1])
if not held then return false end
return {held, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2])}
`)
