import { sleep } from '../wait.ts'
import type { AcquireResult, Handoff, LockClaim, LockStore } from '../types.ts'

let lastArrival = 0

/**
 * An acquire's place in this process's line: when it was called, on the
 * monotonic clock, nudged so that no two acquires share a place
 */
export function arrivalAt(now: number = performance.now()): number {
  lastArrival = now > lastArrival ? now : lastArrival + 0.000_001
  return lastArrival
}

/**
 * Whether waiters of this process stand in line for the key: a new acquire
 * then waits behind them before its first try
 */
export function othersWaiting(store: LockStore, key: string): boolean {
  return store.hasWaiters?.(key) ?? false
}

/**
 * Waits for a release of the key, through the store when it can wake us,
 * else for `ms`. Resolves with the hand-over when a release of this
 * process gave the lock to `claim`.
 */
export function waitForRelease(
  store: LockStore,
  key: string,
  ms: number,
  signal: AbortSignal | undefined,
  claim: LockClaim
): Promise<void | Handoff | false> {
  if (!store.waitForRelease) return sleep(ms, signal).then(() => false)
  return store.waitForRelease(key, ms, signal, claim)
}

/**
 * How long to sleep after a refused try: jitter spreads pollers apart, the
 * holder's remaining ttl caps it, and at least 1 ms so "expires now" cannot
 * spin us
 */
export function nextWait(delay: number, refused: AcquireResult, untilDeadline: number): number {
  let wait = delay * (0.5 + Math.random() / 2)
  if (refused.retryAfter !== undefined && refused.retryAfter !== null) {
    wait = Math.min(wait, refused.retryAfter)
  }
  return Math.max(1, Math.min(wait, untilDeadline))
}
