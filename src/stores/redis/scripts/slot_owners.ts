import { script } from './script.ts'

/**
 * KEYS: slots. Read-only (a replica can run it).
 * Returns the owners of unexpired slots, first to expire first.
 */
export const SLOT_OWNERS = script(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf')
`)
