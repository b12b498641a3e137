import { script } from './script.ts'

/**
 * KEYS: lock, fencing counter. ARGV: owner, ttl ms ('' = no expiry),
 * lifetime of the counter in ms. Returns {1, token}, else {0, PTTL of the
 * holder} (-1 = no expiry, -2 = freed meanwhile) and marks the lock waited
 * for. A token is the counter + 1, and at least the server time in µs,
 * so a counter lost or set back (expiry, failover) never repeats one.
 */
export const ACQUIRE = script(`
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
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local token = redis.call('INCR', KEYS[2])
if token < now then
  token = now
  redis.call('SET', KEYS[2], string.format('%d', token))
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {1, token}
`)
