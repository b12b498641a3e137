import { NEXT_TOKEN } from './functions.ts'
import { script } from './script.ts'

/**
 * Hands the lock from its holder straight to a waiter, keeping the mark
 * of a lock waited for: the waiters of other processes still wait.
 * KEYS: lock, fencing counter. ARGV: holder, next owner, its ttl ms
 * ('' = no expiry), lifetime of the counter in ms, '1' to hand out a
 * fencing token (as ACQUIRE does).
 * Returns {1, token} ({1} without fencing) when handed over, {0} when the
 * holder does not hold the lock.
 */
export const HAND_OVER = script(
  [NEXT_TOKEN],
  `
local WAITED = '\\0waited'
local held = redis.call('GET', KEYS[1])
local mark
if held == ARGV[1] then mark = '' elseif held == ARGV[1] .. WAITED then mark = WAITED end
if not mark then return {0} end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2] .. mark)
else
  redis.call('SET', KEYS[1], ARGV[2] .. mark, 'PX', ARGV[3])
end
if ARGV[5] ~= '1' then return {1} end
return {1, nextToken(KEYS[2], ARGV[4], redis.call('TIME'))}
`
)
