import { script } from './script.ts'

/**
 * KEYS: slots. ARGV: release channel, message.
 * Publishes once per freed slot, so as many waiters are woken.
 */
export const FORCE_RELEASE_SLOTS = script(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local freed = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1])
for _ = 1, freed do redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return freed
`)
