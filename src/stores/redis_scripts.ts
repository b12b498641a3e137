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
 * The next fencing token of a key (KEYS[2] is its counter):
 * max(counter + 1, server time in µs). The counter keeps tokens
 * increasing while it lives, and once it has expired the clock has moved
 * past every token it handed out. It travels as a string: Lua would print
 * a number this large in exponent notation, losing digits.
 */
const NEXT_TOKEN = `
local function next_token()
  local time = redis.call('TIME')
  local token = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local last = tonumber(redis.call('GET', KEYS[2]))
  if last and last >= token then token = last + 1 end
  return string.format('%d', token)
end
`

/**
 * Sets the lock KEYS[1] to the owner ARGV[o] for the ttl ARGV[t] ('' = no
 * expiry), and the counter (when a token was handed out) for ARGV[c] ms
 */
const HOLD = `
local function hold(o, t, c, token)
  if ARGV[t] == '' then
    redis.call('SET', KEYS[1], ARGV[o])
  else
    redis.call('SET', KEYS[1], ARGV[o], 'PX', ARGV[t])
  end
  if token then redis.call('SET', KEYS[2], token, 'PX', ARGV[c]) end
end
`

/**
 * KEYS: lock, fencing counter. ARGV: owner, ttl ms ('' = no expiry),
 * lifetime of the counter in ms.
 * Returns {1, token} when acquired, else {0, PTTL of the holder} (-1 = no expiry).
 */
export const ACQUIRE = script(`
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then return {0, pttl} end
${NEXT_TOKEN}
${HOLD}
local token = next_token()
hold(1, 2, 3, token)
return {1, token}
`)

/**
 * Hands the lock from its holder straight to a waiter.
 * KEYS: lock, fencing counter. ARGV: holder, next owner, its ttl ms
 * ('' = no expiry), lifetime of the counter in ms, '1' to hand out a
 * fencing token. Returns the token ('' without fencing) when handed
 * over, 0 when the holder does not hold the lock.
 */
export const HAND_OVER = script(`
${NEXT_TOKEN}
${HOLD}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local token = false
if ARGV[5] == '1' then token = next_token() end
hold(2, 3, 4, token)
return token or ''
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
 * KEYS: lock, fencing counter. Read-only.
 * Returns nil when the key is free, else {owner, PTTL, counter or nil}.
 */
export const INSPECT = script(`
local owner = redis.call('GET', KEYS[1])
if not owner then return false end
return {owner, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2])}
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

/**
 * Semaphores: the holders of a key are a sorted set, owner -> expiry in ms
 * of the server clock (+inf without ttl). Every script first reads the
 * clock and drops the expired holders, so expiry never depends on the
 * clocks of the app servers.
 */
const SLOTS_NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
`

/**
 * The set lives as long as its last holder, so an abandoned semaphore
 * leaves nothing behind. Scores are compared with +inf as a range rather
 * than parsed, as Lua's tonumber('inf') depends on the platform.
 */
const KEEP_UNTIL_LAST_HOLDER = `
local function keep_until_last_holder(now)
  if redis.call('ZCOUNT', KEYS[1], '+inf', '+inf') > 0 then
    redis.call('PERSIST', KEYS[1])
    return
  end
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, tonumber(last[2]) - now)))
  end
end
`

/**
 * KEYS: slots, fencing counter. ARGV: owner, limit, ttl ms ('' = no expiry),
 * lifetime of the counter in ms.
 * Returns {1, token} when a slot was taken (the token as in ACQUIRE), else
 * {0, ms until the first holder expires} (-1 = none of them expires).
 * An owner already holding a slot is refused, as a held lock is.
 */
export const ACQUIRE_SLOT = script(`
${SLOTS_NOW}
${KEEP_UNTIL_LAST_HOLDER}
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) or redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local first = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if not first[2] then return {0, -1} end
  return {0, math.max(1, tonumber(first[2]) - now)}
end
${NEXT_TOKEN}
local token = next_token()
local expiry = '+inf'
if ARGV[3] ~= '' then expiry = string.format('%d', now + tonumber(ARGV[3])) end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
keep_until_last_holder(now)
redis.call('SET', KEYS[2], token, 'PX', ARGV[4])
return {1, token}
`)

/**
 * KEYS: slots. ARGV: owner, release channel, message.
 * Returns 1 when released, 0 when the owner holds no unexpired slot.
 */
export const RELEASE_SLOT = script(`
${SLOTS_NOW}
${KEEP_UNTIL_LAST_HOLDER}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
keep_until_last_holder(now)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

/**
 * KEYS: slots. ARGV: release channel, message.
 * Publishes once per freed slot, so as many waiters are woken.
 */
export const FORCE_RELEASE_SLOTS = script(`
${SLOTS_NOW}
local freed = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1])
for _ = 1, freed do redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return freed
`)

/**
 * KEYS: slots. ARGV: owner, ttl ms.
 * Returns 1 when extended, 0 when the owner holds no unexpired slot.
 */
export const EXTEND_SLOT = script(`
${SLOTS_NOW}
${KEEP_UNTIL_LAST_HOLDER}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
keep_until_last_holder(now)
return 1
`)

/**
 * KEYS: slots. Returns the owners of unexpired slots, first to expire first.
 * Read-only: reading the clock is all a replica could not do for us.
 */
export const SLOT_OWNERS = script(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf')
`)
