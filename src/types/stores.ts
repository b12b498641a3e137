import type { ConfigProvider } from '@adonisjs/core/types'

/**
 * What a store answers to an acquire attempt when it knows more than
 * a plain boolean.
 */
export interface AcquireResult {
  acquired: boolean
  /**
   * Fencing token of this acquisition: strictly greater than every
   * token handed out before for the same key.
   */
  fencingToken?: number | null
  /**
   * When not acquired: how many ms the current holder still has, so a
   * waiter never sleeps past it. `null` when the holder never expires.
   */
  retryAfter?: number | null
}

/**
 * What a waiting lock asks for, should a release of this process hand
 * the lock straight to it: its owner and ttl
 */
export interface LockClaim {
  owner: string
  ttl: number | null
  /**
   * When the acquire was called (`performance.now()`, no two alike):
   * waiters stand in line in this order, so a waiter that woke and failed
   * again keeps its place
   */
  waitingSince: number
}

/**
 * A lock handed to a waiter by a release of this process
 */
export interface Handoff {
  fencingToken: number | null
  /**
   * `performance.now()` before the store call that moved the lock: its
   * expiry is at least this plus the ttl
   */
  startedAt: number
}

/**
 * A held lock as a store sees it
 */
export interface LockInspection {
  owner: string
  /**
   * Milliseconds until it expires; `null` when it never expires
   */
  expiresIn: number | null
  /**
   * Fencing token of the current holder, when the store keeps it
   */
  fencingToken?: number | null
}

/**
 * The contract every lock store implements. Keys handed to a store are
 * already validated and prefixed.
 */
export interface LockStore {
  /**
   * Saves the lock when the key is free (or its holder expired).
   * Returns false (or `{ acquired: false }`) when someone else holds it.
   */
  save(key: string, owner: string, ttl: number | null): Promise<boolean | AcquireResult>

  /**
   * Deletes the lock when `owner` holds it, else throws E_LOCK_NOT_OWNED
   */
  delete(key: string, owner: string): Promise<void>

  /**
   * Deletes the lock whoever holds it
   */
  forceDelete(key: string): Promise<void>

  /**
   * Whether someone holds an unexpired lock on the key
   */
  exists(key: string): Promise<boolean>

  /**
   * Sets the expiry to now + duration when `owner` still holds an
   * unexpired lock, else throws E_LOCK_NOT_OWNED
   */
  extend(key: string, owner: string, duration: number): Promise<void>

  /**
   * The owner of the unexpired lock on the key, or null
   */
  owner?(key: string): Promise<string | null>

  /**
   * The unexpired lock on the key (who, for how long, which token), or
   * null when the key is free. Backs `node ace lock:status`.
   */
  inspect?(key: string): Promise<LockInspection | null>

  /**
   * Deletes expired locks the store keeps around; returns how many.
   * Backs `node ace lock:prune`.
   */
  prune?(): Promise<number>

  /**
   * Resolves when the key is released (or may have been), or after `ms`,
   * whichever comes first. Lets waiters sleep without polling. With a
   * `claim`, a release of this process may hand the lock straight to the
   * waiter: the wait then resolves with the hand-over, and the claim's
   * owner holds the lock.
   */
  waitForRelease?(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: LockClaim
  ): Promise<void | Handoff>

  /**
   * Whether waiters of this process stand in line for the key (or one of
   * them was handed the lock and holds it). A new acquire then queues
   * behind them instead of barging in, so an owner that releases and asks
   * again cannot starve them.
   */
  hasWaiters?(key: string): boolean

  /**
   * Releases what the store opened (subscriber connections, timers)
   */
  close?(): Promise<void>
}

/**
 * What a store implements to back semaphores: up to `limit` owners hold
 * a key at once. Same contract as the lock methods otherwise; release of
 * a slot must wake a waiter of that key like a lock release does.
 *
 * Every method gets the semaphore's `limit`: a store keeping one record
 * per slot (the database store) finds the slots of a key with it; others
 * may ignore it.
 */
export interface SemaphoreStore {
  saveSlot(
    key: string,
    owner: string,
    limit: number,
    ttl: number | null
  ): Promise<boolean | AcquireResult>
  deleteSlot(key: string, owner: string, limit: number): Promise<void>
  forceDeleteSlots(key: string, limit: number): Promise<void>
  extendSlot(key: string, owner: string, duration: number, limit: number): Promise<void>
  /**
   * Owners holding an unexpired slot
   */
  slotOwners(key: string, limit: number): Promise<string[]>
  /**
   * Like `waitForRelease`, for a slot of the key: resolves when a slot is
   * released (or may have been), or after `ms`. Slot waiters stand in a
   * line of their own, apart from the lock of the same key, in the order
   * of `claim.waitingSince`; nothing is ever handed to them. Without it,
   * semaphores wait through `waitForRelease` with no claim (a waiter then
   * loses its place at each try) and share the lock's `hasWaiters`.
   */
  waitForSlot?(key: string, ms: number, signal?: AbortSignal, claim?: LockClaim): Promise<void>
  /**
   * Whether slot waiters of this process stand in line for the key
   */
  hasSlotWaiters?(key: string): boolean
}

/**
 * Builds a store. The `name` is the store's key in `config/lock.ts`.
 */
export interface StoreFactory {
  driver: { factory: (name: string) => LockStore }
}

/**
 * A store in `config/lock.ts`: a factory, or a config provider resolving
 * to one (used by the built-in stores to reach the app container).
 */
export type StoreEntry = StoreFactory | ConfigProvider<StoreFactory>
