import type { LockReporter } from './reporting.ts'
import { Watchdog, type WatchedLock } from './watchdog.ts'

/**
 * A lock restored from `serialize()`: held already, by this owner
 */
export interface RestoredHold {
  owner: string
  expirationTime: number | null
  fencingToken: number | null
}

/**
 * Stores count expiry on their own clock in whole ms (the database stores'
 * timestamps, Redis's PX), so they may free a key up to a ms before
 * `started + ttl`: the local view ends this much earlier, on the safe side
 */
const STORE_CLOCK_MARGIN = 2

/**
 * The local expiry of a hold taken or extended by a store call that
 * started at `startedAt`
 */
export function expiryAfter(startedAt: number, ttl: number): number {
  return startedAt + ttl - STORE_CLOCK_MARGIN
}

/**
 * What one Lock object knows of its own hold, without asking the store:
 * the owner it holds the key as, when the hold runs out and its fencing
 * token; with `autoExtend`, the watchdog that keeps it. Expiry counts on
 * the monotonic clock, so a change of the system time cannot move it.
 */
export class LockHold {
  owner: string
  fencingToken: number | null
  /**
   * Taken and not released or lost since
   */
  acquired: boolean
  /**
   * `performance.now()` at which the hold runs out; null without expiry
   */
  expiresAt: number | null
  /**
   * Bumped when the lock is taken, released or lost: a store answer that
   * comes after that no longer speaks for the hold
   */
  generation = 0
  /**
   * Counts the acquisitions of this object: a run tells its own from a newer one
   */
  acquisitions = 0
  readonly #lock: WatchedLock
  readonly #reporter: LockReporter
  readonly #ttl: number | null
  #watchdog?: Watchdog
  /**
   * An acquire used `owner` already: the next one draws a fresh owner, so
   * a late cleanup of an earlier try cannot free the newer acquisition
   */
  #ownerUsed: boolean
  /**
   * The acquires of this object in progress, and the owner they all use
   */
  #acquiring = 0
  #acquiringAs = ''

  constructor(
    lock: WatchedLock,
    reporter: LockReporter,
    ttl: number | null,
    restored?: RestoredHold
  ) {
    this.#lock = lock
    this.#reporter = reporter
    this.#ttl = ttl
    this.owner = restored?.owner ?? crypto.randomUUID()
    this.expiresAt = restored?.expirationTime
      ? performance.now() + (restored.expirationTime - Date.now())
      : null
    this.fencingToken = restored?.fencingToken ?? null
    this.acquired = restored !== undefined
    this.#ownerUsed = restored !== undefined
  }

  /**
   * The owner of a new acquire: a fresh one after the first, unless this
   * object still holds the lock or another acquire of it is in progress
   * (one object must not take two semaphore slots: the store refuses an
   * owner a second one). Until it succeeds, a lock still held keeps its
   * owner, for a release meanwhile. Pair with `acquireEnded()`.
   */
  nextOwner(): string {
    if (this.#acquiring++ > 0) return this.#acquiringAs
    const reuse = !this.#ownerUsed || (this.acquired && !this.isExpired())
    const owner = reuse ? this.owner : crypto.randomUUID()
    this.#ownerUsed = true
    if (!this.acquired) this.owner = owner
    this.#acquiringAs = owner
    return owner
  }

  acquireEnded() {
    this.#acquiring--
  }

  /**
   * The store gave the lock to `owner`. Counting the expiry from before
   * the store call (`attemptedAt`) keeps it on the safe side of the store's.
   */
  took(owner: string, fencingToken: number | null, attemptedAt: number) {
    /**
     * A watchdog still running kept an acquisition that ended without a
     * release (expired or force-released): its run learns the loss
     */
    this.#watchdog?.lose('a newer acquisition of this object took the lock')
    this.acquisitions++
    this.owner = owner
    this.acquired = true
    this.generation++
    this.expiresAt = this.#ttl === null ? null : expiryAfter(attemptedAt, this.#ttl)
    this.fencingToken = fencingToken
  }

  /**
   * With `autoExtend`: aborted with E_LOCK_LOST once the watchdog finds
   * the lock lost. Undefined otherwise.
   */
  get lostSignal(): AbortSignal | undefined {
    return this.#watchdog?.signal
  }

  get watchdog(): Watchdog | undefined {
    return this.#watchdog
  }

  /**
   * Starts the watchdog of a new acquisition when `autoExtend` asks for it
   */
  watch(autoExtend: boolean | undefined) {
    /**
     * The signal of an earlier acquisition's watchdog, maybe aborted, does
     * not speak for this one
     */
    this.#watchdog = undefined
    if (autoExtend && this.#ttl !== null) {
      this.#watchdog = new Watchdog(this.#lock, this.#ttl, (reason) => this.lost(reason))
    }
  }

  /**
   * Whether a running watchdog was stopped
   */
  stopWatchdog(): boolean {
    return this.#watchdog?.stop() ?? false
  }

  resumeWatchdog() {
    this.#watchdog?.resume()
  }

  lost(reason: string) {
    this.acquired = false
    this.generation++
    this.#reporter.lost(reason)
  }

  /**
   * Whether the expiry time we know of has passed
   */
  isExpired(): boolean {
    return this.expiresAt !== null && this.expiresAt <= performance.now()
  }

  /**
   * Ms left before expiry, null without expiry
   */
  remainingTime(): number | null {
    if (this.expiresAt === null) return null
    return Math.max(0, Math.ceil(this.expiresAt - performance.now()))
  }

  /**
   * The expiry on the wall clock (ms since the epoch), for `serialize()`
   */
  expirationTime(): number | null {
    if (this.expiresAt === null) return null
    return Math.round(Date.now() + this.expiresAt - performance.now())
  }
}
