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
 * Tokens below this (the year 2001 in µs) come from a counter that was
 * missing: it expired, or never existed
 */
const SEEDED = '1000000000000000'

/**
 * The next fencing token of a key: its counter (KEYS[2]) + 1, which then
 * lives `lifetime` ms more. A missing counter starts from the server time
 * in µs, which by then has moved past every token the expired one handed
 * out (at most one per µs). The counter is written with %d: Lua would
 * print a number this large in exponent notation.
 */
const NEXT_TOKEN = `
local function next_token(lifetime)
  local token = redis.call('INCR', KEYS[2])
  if token < ${SEEDED} then
    local time = redis.call('TIME')
    token = tonumber(time[1]) * 1000000 + tonumber(time[2])
    redis.call('SET', KEYS[2], string.format('%d', token))
  end
  redis.call('PEXPIRE', KEYS[2], lifetime)
  return token
end
`

/**
 * Sets the lock KEYS[1] to `owner` for `ttl` ms ('' = no expiry), with
 * the extra SET arguments given (NX)
 */
const SET_OWNER = `
local function set_owner(owner, ttl, ...)
  if ttl == '' then return redis.call('SET', KEYS[1], owner, ...) end
  return redis.call('SET', KEYS[1], owner, 'PX', ttl, ...)
end
`

/**
 * Ends the value of a lock (its owner) once a try was refused during the
 * holding: only the release of a lock waited for publishes. Kept in the
 * value, the mark lives and dies with the holding, and a release reads it
 * with the owner, at no extra command. No owner holds a NUL (restoreLock
 * refuses them, and generated owners are UUIDs), so none ends like it.
 */
export const WAITED_MARK = '\u0000waited'

/**
 * WAITED_MARK in Lua
 */
const WAITED = `
local WAITED = '\\0waited'
`

const IS_WAITED_FOR = `
local function is_waited_for(value)
  return string.sub(value, -#WAITED) == WAITED
end
`

/**
 * The owner check of every script that acts for the holder ARGV[1]: sets
 * `mark` to the mark the lock KEYS[1] carries ('' or WAITED) when ARGV[1]
 * holds it, else nil. Inline rather than a function: a function is a
 * closure made anew on every call, measurable on the release path.
 */
const HOLDER_MARK = `
${WAITED}
local held = redis.call('GET', KEYS[1])
local mark
if held == ARGV[1] then mark = '' elseif held == ARGV[1] .. WAITED then mark = WAITED end
`

/**
 * A refused try marks the lock `lock` as waited for. A waiter sleeps at
 * most as long as the holder has left before it tries again, and a
 * hand-over passes the mark on. Returns the PTTL of the lock (-2: freed
 * meanwhile).
 */
const MARK_WAITED_FOR = `
local function mark_waited_for(lock)
  local value = redis.call('GET', lock)
  if not value then return -2 end
  if not is_waited_for(value) then redis.call('APPEND', lock, WAITED) end
  return redis.call('PTTL', lock)
end
`

/**
 * KEYS: lock, fencing counter. ARGV: owner, ttl ms ('' = no expiry),
 * lifetime of the counter in ms.
 * Returns {1, token} when acquired, else {0, PTTL of the holder} (-1 = no expiry).
 */
export const ACQUIRE = script(`
${NEXT_TOKEN}
${SET_OWNER}
${WAITED}
${IS_WAITED_FOR}
${MARK_WAITED_FOR}
if not set_owner(ARGV[1], ARGV[2], 'NX') then return {0, mark_waited_for(KEYS[1])} end
return {1, next_token(ARGV[3])}
`)

/**
 * After a refused `SET NX` (no fencing). KEYS: lock.
 * Returns the PTTL of the holder (-1 = no expiry, -2 = freed meanwhile).
 */
export const MARK_REFUSED = script(`
${WAITED}
${IS_WAITED_FOR}
${MARK_WAITED_FOR}
return mark_waited_for(KEYS[1])
`)

/**
 * Hands the lock from its holder straight to a waiter, with the mark of a
 * lock waited for: the waiters of other processes still wait.
 * KEYS: lock, fencing counter. ARGV: holder, next owner, its ttl ms
 * ('' = no expiry), lifetime of the counter in ms, '1' to hand out a
 * fencing token. Returns {1, token} ({1} without fencing) when handed
 * over, {0} when the holder does not hold the lock.
 */
export const HAND_OVER = script(`
${NEXT_TOKEN}
${SET_OWNER}
${HOLDER_MARK}
if not mark then return {0} end
set_owner(ARGV[2] .. mark, ARGV[3])
if ARGV[5] == '1' then return {1, next_token(ARGV[4])} end
return {1}
`)

/**
 * KEYS: lock. ARGV: owner, release channel, message.
 * Returns 2 when released and published (a try was refused meanwhile:
 * there may be waiters in other processes, which only that wakes), 1 when
 * released (nobody waited), 0 when the owner does not hold the lock.
 */
export const RELEASE = script(`
${HOLDER_MARK}
if not mark then return 0 end
redis.call('DEL', KEYS[1])
if mark == '' then return 1 end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 2
`)

/**
 * KEYS: lock, fencing counter. Read-only.
 * Returns nil when the key is free, else {value of the lock (its owner,
 * possibly marked WAITED_MARK), PTTL, counter or nil}.
 */
export const INSPECT = script(`
local held = redis.call('GET', KEYS[1])
if not held then return false end
return {held, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2])}
`)

/**
 * KEYS: lock. ARGV: release channel, message.
 * Returns as RELEASE, 0 when the lock was free.
 */
export const FORCE_RELEASE = script(`
${WAITED}
${IS_WAITED_FOR}
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
redis.call('DEL', KEYS[1])
if not is_waited_for(held) then return 1 end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 2
`)

/**
 * KEYS: lock. ARGV: owner, ttl ms.
 * Returns 1 when extended, 0 when the owner does not hold the lock.
 */
export const EXTEND = script(`
${HOLDER_MARK}
if not mark then return 0 end
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
local expiry = '+inf'
if ARGV[3] ~= '' then expiry = string.format('%d', now + tonumber(ARGV[3])) end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
keep_until_last_holder(now)
return {1, next_token(ARGV[4])}
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
