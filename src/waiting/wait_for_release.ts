import { sleep } from '../wait.ts'
import type { AcquireResult, Handoff, LockClaim, LockStore } from '../types.ts'

let arrivals = 0

/**
 * When an acquire started, as its place in line: `startedAt` plus a
 * fraction of a ms that grows with each acquire of this process that waits
 * (wrapping at 1000), so two acquires of the same ms do not tie
 */
export function arrivalAfter(startedAt: number): number {
  arrivals = (arrivals + 1) % 1000
  return startedAt + arrivals / 1000
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
