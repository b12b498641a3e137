/**
 * Lua functions several scripts share, written once here and put before
 * the script that calls them (see `script()`). Each takes all it reads as
 * arguments. The scripts as the server receives them: docs/redis_scripts.md.
 */

/**
 * Moves the fencing counter on and returns the new token: the counter + 1,
 * and at least the server time in µs (`time`: the reply of TIME), so a
 * counter lost or set back (expiry, failover) never repeats one. The
 * counter then lives `lifetimeMs`. One GET and one SET: the token is
 * almost always the time, so an INCR would be followed by a SET anyway.
 */
export const NEXT_TOKEN = `
local function nextToken(counterKey, lifetimeMs, time)
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local token = (tonumber(redis.call('GET', counterKey)) or 0) + 1
  if token < now then token = now end
  redis.call('SET', counterKey, string.format('%d', token), 'PX', lifetimeMs)
  return token
end
`

/**
 * A semaphore's set lives as long as its last holder: no expiry while a
 * holder has none (score +inf), else until the last expiry. `nowMs`: the
 * server time in ms.
 */
export const EXPIRE_WITH_LAST_SLOT = `
local function expireWithLastSlot(slotsKey, nowMs)
  if redis.call('ZCOUNT', slotsKey, '+inf', '+inf') > 0 then
    redis.call('PERSIST', slotsKey)
  else
    local last = redis.call('ZRANGE', slotsKey, -1, -1, 'WITHSCORES')
    if last[2] then
      redis.call('PEXPIRE', slotsKey, string.format('%d', math.max(1, tonumber(last[2]) - nowMs)))
    end
  end
end
`
