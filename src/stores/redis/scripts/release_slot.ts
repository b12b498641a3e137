import { script } from './script.ts'

/**
 * KEYS: slots. ARGV: owner, release channel, message.
 * Returns 1 when released, 0 when the owner holds no unexpired slot.
 * The set lives as long as its last holder (see ACQUIRE_SLOT).
 */
export const RELEASE_SLOT = script(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('ZCOUNT', KEYS[1], '+inf', '+inf') > 0 then
  redis.call('PERSIST', KEYS[1])
else
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, tonumber(last[2]) - now)))
  end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)
