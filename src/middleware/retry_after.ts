import type { Lock } from '../lock.ts'

const KEPT = 20

/**
 * How long the last requests of a route took in this process, to tell a
 * refused duplicate when trying again makes sense
 */
export class RecentDurations {
  #durations: number[] = []
  #next = 0

  add(ms: number) {
    this.#durations[this.#next] = ms
    this.#next = (this.#next + 1) % KEPT
  }

  longest(): number | undefined {
    return this.#durations.length ? Math.max(...this.#durations) : undefined
  }
}

/**
 * `Retry-After` in seconds (at least 1): the longest of the route's
 * recent durations, capped by the holder's remaining time when the store
 * told it, else by the lock's ttl. Without history, that cap.
 */
export function retryAfterSeconds(lock: Lock, ttl: number, durations: RecentDurations): number {
  const cap = lock.getHolderRemainingTime() ?? ttl
  const recent = durations.longest()
  const ms = recent === undefined ? cap : Math.min(recent, cap)
  return Math.max(1, Math.ceil(ms / 1000))
}
