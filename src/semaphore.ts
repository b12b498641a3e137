import { E_INVALID_SEMAPHORE_LIMIT, E_SEMAPHORE_NOT_SUPPORTED } from './errors.ts'
import { describe } from './describe.ts'
import { callStore, Lock } from './lock.ts'
import type {
  AcquireResult,
  LockStore,
  ResolvedLockOptions,
  SemaphoreStore,
  SerializedLock,
} from './types.ts'

/**
 * Stores do work and build statements in proportion to the limit: beyond
 * this a semaphore is the wrong tool (a counter, a rate limiter)
 */
const MAX_SEMAPHORE_LIMIT = 1000

/**
 * Presents a store's semaphore slots as a lock store, so a semaphore
 * waits, runs, extends and is watched exactly like a lock
 */
class SlotsAsLockStore implements LockStore {
  #store: LockStore & SemaphoreStore
  #limit: number
  waitForRelease?: LockStore['waitForRelease']
  hasWaiters?: LockStore['hasWaiters']

  constructor(store: LockStore & SemaphoreStore, limit: number) {
    this.#store = store
    this.#limit = limit
    /**
     * Waiters stand in line only while every slot is taken (a release
     * wakes one of them), so a newcomer joins the line too, as with locks
     */
    if (store.waitForSlot) {
      this.waitForRelease = (key, ms, signal, claim) => store.waitForSlot!(key, ms, signal, claim)
      if (store.hasSlotWaiters) this.hasWaiters = store.hasSlotWaiters.bind(store)
      return
    }
    /**
     * Without the lock's claim: a lock release must not hand its key to a
     * slot waiter
     */
    if (store.waitForRelease) {
      this.waitForRelease = (key, ms, signal) => store.waitForRelease!(key, ms, signal)
    }
    if (store.hasWaiters) this.hasWaiters = store.hasWaiters.bind(store)
  }

  save(key: string, owner: string, ttl: number | null): Promise<boolean | AcquireResult> {
    return this.#store.saveSlot(key, owner, this.#limit, ttl)
  }

  delete(key: string, owner: string): Promise<void> {
    return this.#store.deleteSlot(key, owner, this.#limit)
  }

  forceDelete(key: string): Promise<void> {
    return this.#store.forceDeleteSlots(key, this.#limit)
  }

  extend(key: string, owner: string, duration: number): Promise<void> {
    return this.#store.extendSlot(key, owner, duration, this.#limit)
  }

  async exists(key: string): Promise<boolean> {
    const owners = await this.slotOwners(key)
    return owners.length > 0
  }

  slotOwners(key: string): Promise<string[]> {
    return this.#store.slotOwners(key, this.#limit)
  }
}

/**
 * A lock that up to `limit` owners hold at once. Same API as Lock;
 * `isLocked()` tells whether anyone holds a slot, `isFull()` whether a
 * new owner would have to wait.
 */
export class Semaphore extends Lock {
  readonly limit: number
  #slots: SlotsAsLockStore

  constructor(
    key: string,
    store: LockStore,
    options: ResolvedLockOptions,
    ttl: number | null,
    limit: unknown,
    restored?: ConstructorParameters<typeof Lock>[4]
  ) {
    if (!Number.isSafeInteger(limit) || (limit as number) < 1) {
      throw new E_INVALID_SEMAPHORE_LIMIT(
        `Invalid semaphore limit ${describe(limit)}: expected a positive integer`
      )
    }
    if ((limit as number) > MAX_SEMAPHORE_LIMIT) {
      throw new E_INVALID_SEMAPHORE_LIMIT(
        `Invalid semaphore limit ${limit}: the largest is ${MAX_SEMAPHORE_LIMIT}`
      )
    }
    if (!supportsSemaphores(store)) {
      throw new E_SEMAPHORE_NOT_SUPPORTED(
        `The "${options.storeName}" lock store does not implement semaphores (saveSlot, deleteSlot, ...)`
      )
    }
    const slots = new SlotsAsLockStore(store, limit as number)
    super(key, slots, options, ttl, restored)
    this.limit = limit as number
    this.#slots = slots
  }

  async isOwned(): Promise<boolean> {
    const owners = await this.#owners()
    return owners.includes(this.getOwner())
  }

  /**
   * Whether all `limit` slots are taken
   */
  async isFull(): Promise<boolean> {
    const owners = await this.#owners()
    return owners.length >= this.limit
  }

  #owners(): Promise<string[]> {
    return callStore(this, 'check', () => this.#slots.slotOwners(this.storeKey))
  }

  serialize(): SerializedLock {
    return { ...super.serialize(), limit: this.limit }
  }
}

function supportsSemaphores(store: LockStore): store is LockStore & SemaphoreStore {
  const candidate = store as Partial<SemaphoreStore>
  return (
    typeof candidate.saveSlot === 'function' &&
    typeof candidate.deleteSlot === 'function' &&
    typeof candidate.forceDeleteSlots === 'function' &&
    typeof candidate.extendSlot === 'function' &&
    typeof candidate.slotOwners === 'function'
  )
}
