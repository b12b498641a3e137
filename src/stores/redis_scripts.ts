import { createHash } from 'node:crypto'

/**
 * A Lua script, run with EVALSHA (EVAL when the server lost it)
 */
export interface RedisScript {
  lua: string
  sha: string
}

function script(lua: string): RedisScript {
  return { lua: lua.trim(), sha: createHash('sha1').update(lua.trim()).digest('hex') }
}

/**
 * KEYS: lock, fencing counter. ARGV: owner, ttl ms ('' = no expiry),
 * lifetime of the counter in ms.
 * Returns {1, token} when acquired, else {0, PTTL of the holder} (-1 = no expiry).
 *
 * The token is max(counter + 1, server time in µs): the counter keeps tokens
 * increasing while it lives, and once it has expired the clock has moved past
 * every token it handed out. It travels as a string: Lua would print a number
 * this large in exponent notation, losing digits.
 */
export const ACQUIRE = script(`
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then return {0, pttl} end
local time = redis.call('TIME')
local token = tonumber(time[1]) * 1000000 + tonumber(time[2])
local last = tonumber(redis.call('GET', KEYS[2]))
if last and last >= token then token = last + 1 end
token = string.format('%d', token)
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('SET', KEYS[2], token, 'PX', ARGV[3])
return {1, token}
`)

/**
 * KEYS: lock. ARGV: owner, release channel, message.
 * Returns 1 when released, 0 when the owner does not hold the lock.
 */
export const RELEASE = script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

/**
 * KEYS: lock. ARGV: release channel, message.
 */
export const FORCE_RELEASE = script(`
if redis.call('DEL', KEYS[1]) == 1 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return 1
`)

/**
 * KEYS: lock. ARGV: owner, ttl ms.
 * Returns 1 when extended, 0 when the owner does not hold the lock.
 */
export const EXTEND = script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)
