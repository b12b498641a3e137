import { Mutex, type MutexInterface } from 'async-mutex'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import { settleWithin } from '../wait.ts'
import { arrivalAt } from '../waiting/main.ts'
import type {
  AcquireResult,
  LockClaim,
  LockInspection,
  LockStore,
  SemaphoreStore,
} from '../types.ts'

interface Holder {
  owner: string
  expiresAt: number | null
  fencingToken: number
}

/**
 * Slot holders of a semaphore (owner -> expiry), and the limit it was
 * last acquired with
 */
interface HeldSlots {
  limit: number
  slots: Map<string, number | null>
}

/**
 * Waiters of one key. They line up on an async-mutex Mutex, in the order
 * their acquires started (its priority), and only the head of the line
 * listens for the next release: each release wakes exactly one waiter, in
 * arrival order.
 */
interface WaitLine {
  mutex: Mutex
  release: PromiseWithResolvers<void> | null
  size: number
  /**
   * A head whose wait ended keeps its place while it tries: back in line
   * within the same macrotask (refused), it is the head again
   */
  head?: { owner: string; unlock: MutexInterface.Releaser }
}

/**
 * Locks held in this process' memory. Not shared between processes.
 */
export class MemoryStore implements LockStore, SemaphoreStore {
  #holders = new Map<string, Holder>()
  #semaphores = new Map<string, HeldSlots>()
  /**
   * Waiters by key: those of a lock, and apart, those of a semaphore
   */
  #lines = new Map<string, WaitLine>()
  #slotLines = new Map<string, WaitLine>()

  /**
   * One counter for every key, with nothing kept per key once a lock is
   * gone. At least the time in µs, as the databases do: a restarted process
   * never hands out a token again.
   */
  #fencing = 0

  /**
   * Map size after the last sweep of expired holders. Sweeping when it
   * doubles keeps memory bounded for keys that expire unreleased.
   */
  #sweptAt = 1024

  async save(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    const now = performance.now()
    const holder = this.#holders.get(key)
    if (holder && (holder.expiresAt === null || holder.expiresAt > now)) {
      return {
        acquired: false,
        retryAfter: holder.expiresAt === null ? null : Math.ceil(holder.expiresAt - now),
      }
    }
    const fencingToken = this.#nextToken(now)
    this.#holders.set(key, { owner, expiresAt: ttl === null ? null : now + ttl, fencingToken })
    if (this.#holders.size > this.#sweptAt) this.#sweep(now)
    return { acquired: true, fencingToken }
  }

  async delete(key: string, owner: string): Promise<void> {
    const holder = this.#holders.get(key)
    if (!holder || holder.owner !== owner) throw new E_LOCK_NOT_OWNED()
    this.#holders.delete(key)
    this.#wakeOne(this.#lines, key, owner)
    if (this.#isExpired(holder, performance.now())) throw new E_LOCK_NOT_OWNED()
  }

  async forceDelete(key: string): Promise<void> {
    this.#holders.delete(key)
    this.#wakeOne(this.#lines, key)
  }

  async exists(key: string): Promise<boolean> {
    return this.#current(key) !== undefined
  }

  async owner(key: string): Promise<string | null> {
    return this.#current(key)?.owner ?? null
  }

  async inspect(key: string): Promise<LockInspection | null> {
    const holder = this.#current(key)
    if (!holder) return null
    return {
      owner: holder.owner,
      expiresIn:
        holder.expiresAt === null
          ? null
          : Math.max(0, Math.ceil(holder.expiresAt - performance.now())),
      fencingToken: holder.fencingToken,
    }
  }

  async extend(key: string, owner: string, duration: number): Promise<void> {
    const holder = this.#current(key)
    if (!holder || holder.owner !== owner) throw new E_LOCK_NOT_OWNED()
    holder.expiresAt = performance.now() + duration
  }

  hasWaiters(key: string): boolean {
    return this.#lines.has(key)
  }

  async waitForRelease(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: LockClaim
  ): Promise<void> {
    return this.#wait(this.#lines, key, ms, signal, claim, () => this.#current(key) === undefined)
  }

  hasSlotWaiters(key: string): boolean {
    return this.#slotLines.has(key)
  }

  async waitForSlot(key: string, ms: number, signal?: AbortSignal, claim?: LockClaim) {
    return this.#wait(this.#slotLines, key, ms, signal, claim, () => {
      const semaphore = this.#liveSemaphore(key, performance.now())
      return !semaphore || semaphore.slots.size < semaphore.limit
    })
  }

  async #wait(
    lines: Map<string, WaitLine>,
    key: string,
    ms: number,
    signal: AbortSignal | undefined,
    claim: LockClaim | undefined,
    isFree: () => boolean
  ): Promise<void> {
    let line = lines.get(key)
    if (!line) {
      line = { mutex: new Mutex(), release: null, size: 0 }
      lines.set(key, line)
    }
    line.size++
    try {
      await this.#waitInLine(lines, key, line, ms, signal, claim, isFree)
    } finally {
      line.size--
      dropIfEmpty(lines, key, line)
    }
  }

  async #waitInLine(
    lines: Map<string, WaitLine>,
    key: string,
    line: WaitLine,
    ms: number,
    signal: AbortSignal | undefined,
    claim: LockClaim | undefined,
    isFree: () => boolean
  ) {
    const deadline = performance.now() + ms
    let unlock: MutexInterface.Releaser | undefined
    if (claim && line.head?.owner === claim.owner) {
      unlock = line.head.unlock
      line.head = undefined
    } else {
      /**
       * A waiter back after a refused try goes ahead of those whose
       * acquire started after its own
       */
      const turn = line.mutex.acquire(-(claim?.waitingSince ?? arrivalAt()))
      try {
        unlock = await settleWithin(turn, ms, signal)
      } finally {
        /**
         * Gave up before our turn: pass it on as soon as it comes
         */
        if (!unlock) turn.then((passOn) => passOn())
      }
      if (!unlock) return
    }
    let keepPlace = claim !== undefined
    try {
      /**
       * Released while we stood in line: no need to wait for the next one
       */
      if (isFree()) return
      line.release ??= Promise.withResolvers<void>()
      await settleWithin(line.release.promise, deadline - performance.now(), signal)
    } catch (error) {
      keepPlace = false
      throw error
    } finally {
      passOnAfterTry(lines, key, line, unlock, keepPlace ? claim!.owner : undefined)
    }
  }

  async saveSlot(
    key: string,
    owner: string,
    limit: number,
    ttl: number | null
  ): Promise<AcquireResult> {
    const now = performance.now()
    const semaphore = this.#liveSemaphore(key, now)
    const expiresAt = ttl === null ? null : now + ttl
    if (!semaphore) {
      this.#semaphores.set(key, { limit, slots: new Map([[owner, expiresAt]]) })
      if (this.#semaphores.size > this.#sweptAt) this.#sweep(now)
      return { acquired: true, fencingToken: this.#nextToken(now) }
    }
    semaphore.limit = limit
    if (semaphore.slots.size >= limit || semaphore.slots.has(owner)) {
      let retryAfter: number | null = null
      for (const slotExpiry of semaphore.slots.values()) {
        if (slotExpiry !== null)
          retryAfter = Math.min(retryAfter ?? Infinity, Math.ceil(slotExpiry - now))
      }
      return { acquired: false, retryAfter }
    }
    semaphore.slots.set(owner, expiresAt)
    return { acquired: true, fencingToken: this.#nextToken(now) }
  }

  async deleteSlot(key: string, owner: string): Promise<void> {
    const semaphore = this.#liveSemaphore(key, performance.now())
    if (!semaphore?.slots.delete(owner)) throw new E_LOCK_NOT_OWNED()
    if (semaphore.slots.size === 0) this.#semaphores.delete(key)
    this.#wakeOne(this.#slotLines, key, owner)
  }

  async forceDeleteSlots(key: string): Promise<void> {
    this.#semaphores.delete(key)
    this.#wakeOne(this.#slotLines, key)
  }

  async extendSlot(key: string, owner: string, duration: number): Promise<void> {
    const semaphore = this.#liveSemaphore(key, performance.now())
    if (!semaphore?.slots.has(owner)) throw new E_LOCK_NOT_OWNED()
    semaphore.slots.set(owner, performance.now() + duration)
  }

  async slotOwners(key: string): Promise<string[]> {
    return [...(this.#liveSemaphore(key, performance.now())?.slots.keys() ?? [])]
  }

  /**
   * A semaphore with its expired slots dropped
   */
  #liveSemaphore(key: string, now: number): HeldSlots | undefined {
    const semaphore = this.#semaphores.get(key)
    if (!semaphore) return undefined
    for (const [owner, expiresAt] of semaphore.slots) {
      if (expiresAt !== null && expiresAt <= now) semaphore.slots.delete(owner)
    }
    return semaphore
  }

  /**
   * Holders and waiters of this store, for diagnostics and tests
   */
  get size(): { locks: number; waiting: number } {
    let waiting = 0
    for (const line of [...this.#lines.values(), ...this.#slotLines.values()]) waiting += line.size
    return { locks: this.#holders.size, waiting }
  }

  async close(): Promise<void> {}

  #current(key: string): Holder | undefined {
    const holder = this.#holders.get(key)
    return holder && !this.#isExpired(holder, performance.now()) ? holder : undefined
  }

  #isExpired(holder: Holder, now: number): boolean {
    return holder.expiresAt !== null && holder.expiresAt <= now
  }

  /**
   * Wakes the head of the line. A head that took the lock it was woken
   * for and now releases it passes its place on at once: the next waiter
   * then tries before any timer fires, not after a macrotask in which a
   * waiter further back, its retry delay over, could take the lock first.
   */
  #wakeOne(lines: Map<string, WaitLine>, key: string, releaser?: string) {
    const line = lines.get(key)
    if (line?.head && line.head.owner === releaser) {
      const { unlock } = line.head
      line.head = undefined
      unlock()
    }
    if (!line?.release) return
    line.release.resolve()
    line.release = null
  }

  /**
   * `now` is the caller's `performance.now()`: with the time origin it is
   * the time in µs, without a second clock read per acquire
   */
  #nextToken(now: number): number {
    this.#fencing = Math.max(this.#fencing + 1, Math.floor((performance.timeOrigin + now) * 1000))
    return this.#fencing
  }

  #sweep(now: number) {
    for (const [key, holder] of this.#holders) {
      if (this.#isExpired(holder, now)) this.#holders.delete(key)
    }
    for (const key of this.#semaphores.keys()) {
      if (this.#liveSemaphore(key, now)!.slots.size === 0) this.#semaphores.delete(key)
    }
    this.#sweptAt = Math.max(1024, (this.#holders.size + this.#semaphores.size) * 2)
  }
}

/**
 * The next in line gets its turn after the head tried, so it does not
 * race the head for the lock it was woken for; a head back in line by
 * then keeps it
 */
function passOnAfterTry(
  lines: Map<string, WaitLine>,
  key: string,
  line: WaitLine,
  unlock: MutexInterface.Releaser,
  owner: string | undefined
) {
  if (owner !== undefined) line.head = { owner, unlock }
  setImmediate(() => {
    if (owner === undefined) {
      unlock()
    } else if (line.head?.unlock === unlock) {
      line.head = undefined
      unlock()
    }
    dropIfEmpty(lines, key, line)
  })
}

function dropIfEmpty(lines: Map<string, WaitLine>, key: string, line: WaitLine) {
  if (line.size === 0 && !line.head && lines.get(key) === line) lines.delete(key)
}
