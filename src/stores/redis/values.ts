import type { AcquireResult } from '../../types.ts'
import { WAITED_MARK } from './scripts/main.ts'

/**
 * The values the store sends to Redis, and how it reads the replies
 */

/**
 * A ttl in whole ms, as PX takes it
 */
export function wholeMs(ttl: number): number {
  return Math.max(1, Math.ceil(ttl))
}

/**
 * A ttl as the scripts take it: '' for no expiry
 */
export function scriptTtl(ttl: number | null): number | '' {
  return ttl === null ? '' : wholeMs(ttl)
}

/**
 * The owner in the value of a lock, without the mark of a lock waited for
 */
export function ownerIn(value: string): string {
  return value.endsWith(WAITED_MARK) ? value.slice(0, -WAITED_MARK.length) : value
}

/**
 * A PTTL as ms left: -1 (no expiry) is null, -2 (gone since) is 0
 */
export function msLeft(pttl: number | string): number | null {
  const ms = Number(pttl)
  return ms === -1 ? null : Math.max(0, ms)
}

/**
 * Whether an integer reply is 1. Number(): integer replies are strings
 * on a `stringNumbers` client.
 */
export function isOne(reply: unknown): boolean {
  return Number(reply) === 1
}

/**
 * The reply of ACQUIRE and ACQUIRE_SLOT
 */
export function acquireResult([acquired, value]: [0 | 1, number]): AcquireResult {
  if (isOne(acquired)) return { acquired: true, fencingToken: Number(value) }
  return { acquired: false, retryAfter: msLeft(value) }
}

/**
 * The server does not know the script (restarted, flushed, failed over)
 */
export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}
