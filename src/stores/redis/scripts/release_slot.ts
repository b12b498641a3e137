import { EXPIRE_WITH_LAST_SLOT } from './functions.ts'
import { script } from './script.ts'

/**
 * KEYS: slots. ARGV: owner, release channel, message.
 * Returns 1 when released, 0 when the owner holds no unexpired slot.
 * The set lives as long as its last holder (see EXPIRE_WITH_LAST_SLOT).
 */
export const RELEASE_SLOT = script(
  [EXPIRE_WITH_LAST_SLOT],
  `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
expireWithLastSlot(KEYS[1], now)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`
)
