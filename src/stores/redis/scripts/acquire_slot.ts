import { EXPIRE_WITH_LAST_SLOT, NEXT_TOKEN } from './functions.ts'
import { script } from './script.ts'

/**
 * Holders are a sorted set, owner -> expiry in server ms (+inf: no ttl).
 * KEYS: slots, fencing counter. ARGV: owner, limit, ttl ms ('' = no
 * expiry), lifetime of the counter in ms. Returns {1, token} (as ACQUIRE),
 * else {0, ms until the first holder expires} (-1 = none expires).
 */
export const ACQUIRE_SLOT = script(
  [EXPIRE_WITH_LAST_SLOT, NEXT_TOKEN],
  `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) or redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local first = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if not first[2] then return {0, -1} end
  return {0, math.max(1, tonumber(first[2]) - now)}
end
local expiry = '+inf'
if ARGV[3] ~= '' then expiry = string.format('%d', now + tonumber(ARGV[3])) end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
expireWithLastSlot(KEYS[1], now)
return {1, nextToken(KEYS[2], ARGV[4], time)}
`
)
