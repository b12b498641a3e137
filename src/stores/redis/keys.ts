/**
 * The Redis keys of a lock key. Its `{…}` hash tag puts the lock, its
 * semaphore slots and its fencing counter in one cluster slot.
 */

/**
 * Shortest lifetime of a fencing counter. Past it, tokens come from the
 * server clock, which by then is past every token the counter handed out.
 */
const FENCING_COUNTER_TTL = 60_000

/**
 * The Redis key of a lock. A `}` in the key would end the hash tag early,
 * so such keys get a tag without them, followed by the key itself.
 */
export function lockKey(key: string): string {
  return key.includes('}') ? `{${key.replaceAll('}', '') || '_'}}${key}` : `{${key}}`
}

/**
 * The sorted set of a semaphore's holders
 */
export function slotsKey(key: string): string {
  return `${lockKey(key)}:slots`
}

/**
 * What a slot release publishes, and the waiting line of the semaphore's
 * waiters: apart from the lock's, which is the key itself (no key holds a
 * NUL)
 */
export function slotsMessage(key: string): string {
  return `${key}\0slots`
}

/**
 * The fencing counter of a key, shared by its lock and its slots
 */
export function counterKey(key: string): string {
  return `${lockKey(key)}:fencing`
}

/**
 * How long the fencing counter of a key lives after an acquisition
 */
export function counterTtl(ttl: number | null): number {
  return Math.max(FENCING_COUNTER_TTL, 2 * (ttl ?? 0))
}
