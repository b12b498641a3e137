import { EXPIRE_WITH_LAST_SLOT } from './functions.ts'
import { script } from './script.ts'

/**
 * KEYS: slots. ARGV: owner, ttl ms.
 * Returns 1 when extended, 0 when the owner holds no unexpired slot.
 * The set lives as long as its last holder (see EXPIRE_WITH_LAST_SLOT).
 */
export const EXTEND_SLOT = script(
  [EXPIRE_WITH_LAST_SLOT],
  `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
expireWithLastSlot(KEYS[1], now)
return 1
`
)
