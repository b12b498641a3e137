import { Mutex } from 'async-mutex'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import { settleWithin } from '../wait.ts'
import type { AcquireResult, LockStore } from '../types.ts'

interface Holder {
  owner: string
  expiresAt: number | null
}

/**
 * Waiters of one key. They line up on an async-mutex Mutex (FIFO), and
 * only the head of the line listens for the next release: each release
 * wakes exactly one waiter, in arrival order.
 */
interface WaitLine {
  mutex: Mutex
  release: PromiseWithResolvers<void> | null
  size: number
}

/**
 * Locks held in this process' memory. Not shared between processes.
 */
export class MemoryStore implements LockStore {
  #holders = new Map<string, Holder>()
  #lines = new Map<string, WaitLine>()

  /**
   * One counter for every key: strictly increasing per key too, with
   * nothing kept per key once a lock is gone
   */
  #fencing = 0

  /**
   * Map size after the last sweep of expired holders. Sweeping when it
   * doubles keeps memory bounded for keys that expire unreleased.
   */
  #sweptAt = 1024

  async save(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    const now = Date.now()
    const holder = this.#holders.get(key)
    if (holder && (holder.expiresAt === null || holder.expiresAt > now)) {
      return {
        acquired: false,
        retryAfter: holder.expiresAt === null ? null : holder.expiresAt - now,
      }
    }
    this.#holders.set(key, { owner, expiresAt: ttl === null ? null : now + ttl })
    if (this.#holders.size > this.#sweptAt) this.#sweep(now)
    return { acquired: true, fencingToken: ++this.#fencing }
  }

  async delete(key: string, owner: string): Promise<void> {
    const holder = this.#holders.get(key)
    if (!holder || holder.owner !== owner) throw new E_LOCK_NOT_OWNED()
    this.#holders.delete(key)
    this.#wakeOne(key)
    if (this.#isExpired(holder, Date.now())) throw new E_LOCK_NOT_OWNED()
  }

  async forceDelete(key: string): Promise<void> {
    this.#holders.delete(key)
    this.#wakeOne(key)
  }

  async exists(key: string): Promise<boolean> {
    return this.#current(key) !== undefined
  }

  async owner(key: string): Promise<string | null> {
    return this.#current(key)?.owner ?? null
  }

  async extend(key: string, owner: string, duration: number): Promise<void> {
    const holder = this.#current(key)
    if (!holder || holder.owner !== owner) throw new E_LOCK_NOT_OWNED()
    holder.expiresAt = Date.now() + duration
  }

  async waitForRelease(key: string, ms: number, signal?: AbortSignal): Promise<void> {
    let line = this.#lines.get(key)
    if (!line) {
      line = { mutex: new Mutex(), release: null, size: 0 }
      this.#lines.set(key, line)
    }
    line.size++
    try {
      await this.#waitInLine(key, line, ms, signal)
    } finally {
      if (--line.size === 0) this.#lines.delete(key)
    }
  }

  async #waitInLine(key: string, line: WaitLine, ms: number, signal?: AbortSignal) {
    const deadline = Date.now() + ms
    const turn = line.mutex.acquire()
    let unlock: (() => void) | undefined
    try {
      unlock = await settleWithin(turn, ms, signal)
    } finally {
      /**
       * Gave up before our turn: pass it on as soon as it comes
       */
      if (!unlock) turn.then((passOn) => passOn())
    }
    if (!unlock) return
    try {
      /**
       * Released while we stood in line: no need to wait for the next one
       */
      if (this.#current(key) === undefined) return
      line.release ??= Promise.withResolvers<void>()
      await settleWithin(line.release.promise, deadline - Date.now(), signal)
    } finally {
      /**
       * The next in line gets its turn after we retried, so it does not
       * race us for the lock we were woken for
       */
      setImmediate(unlock)
    }
  }

  /**
   * Holders and waiters of this store, for diagnostics and tests
   */
  get size(): { locks: number; waiting: number } {
    let waiting = 0
    for (const line of this.#lines.values()) waiting += line.size
    return { locks: this.#holders.size, waiting }
  }

  async close(): Promise<void> {}

  #current(key: string): Holder | undefined {
    const holder = this.#holders.get(key)
    return holder && !this.#isExpired(holder, Date.now()) ? holder : undefined
  }

  #isExpired(holder: Holder, now: number): boolean {
    return holder.expiresAt !== null && holder.expiresAt <= now
  }

  #wakeOne(key: string) {
    const line = this.#lines.get(key)
    if (!line?.release) return
    line.release.resolve()
    line.release = null
  }

  #sweep(now: number) {
    for (const [key, holder] of this.#holders) {
      if (this.#isExpired(holder, now)) this.#holders.delete(key)
    }
    this.#sweptAt = Math.max(1024, this.#holders.size * 2)
  }
}
