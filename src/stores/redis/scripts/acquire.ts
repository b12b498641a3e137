import { NEXT_TOKEN } from './functions.ts'
import { script } from './script.ts'

/**
 * KEYS: lock, fencing counter. ARGV: owner, ttl ms ('' = no expiry),
 * lifetime of the counter in ms. Returns {1, token}, else {0, PTTL of the
 * holder} (-1 = no expiry, -2 = freed meanwhile) and marks the lock waited
 * for. The token is the counter's next one (see NEXT_TOKEN).
 */
export const ACQUIRE = script(
  [NEXT_TOKEN],
  `
local WAITED = '\\0waited'
local set
if ARGV[2] == '' then
  set = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
  set = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX')
end
if not set then
  local held = redis.call('GET', KEYS[1])
  if not held then return {0, -2} end
  if string.sub(held, -#WAITED) ~= WAITED then redis.call('APPEND', KEYS[1], WAITED) end
  return {0, redis.call('PTTL', KEYS[1])}
end
return {1, nextToken(KEYS[2], ARGV[3], redis.call('TIME'))}
`
)
