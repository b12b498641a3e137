import { parseRequiredTtl } from './duration.ts'
import {
  E_INVALID_LOCK_CONFIG,
  E_LOCK_LOST,
  E_LOCK_NOT_OWNED,
  E_LOCK_STORAGE_ERROR,
} from './errors.ts'
import { checkAcquireOptions, resolveRetry } from './options.ts'
import { LockReporter, type AcquireReport } from './reporting.ts'
import { saveWithin } from './wait.ts'
import { arrivalAt, nextWait, othersWaiting, waitForRelease } from './waiting/main.ts'
import { Watchdog } from './watchdog.ts'
import type {
  AcquireResult,
  LockAcquireOptions,
  LockRunContext,
  LockRunOptions,
  LockStore,
  ResolvedLockOptions,
  SerializedLock,
} from './types.ts'

export { STORE_ANSWER_GRACE } from './wait.ts'

/**
 * One lock on one key, held by one owner. Every method is a single call
 * to the store; waiting and the watchdog live here, shared by all stores.
 */
export class Lock {
  readonly key: string
  #storeKey: string
  #store: LockStore
  #options: ResolvedLockOptions
  #owner: string
  #ttl: number | null
  #expirationTime: number | null
  #fencingToken: number | null
  #acquired: boolean
  /**
   * An acquire used `#owner` already: the next one draws a fresh owner, so
   * a late cleanup of an earlier try cannot free the newer acquisition
   */
  #ownerUsed: boolean
  #watchdog?: Watchdog
  #reporter: LockReporter
  #holderRemainingTime: number | null | undefined
  /**
   * Bumped when the lock is taken, released or lost: an extension
   * answered after that no longer speaks for the lock
   */
  #generation = 0

  constructor(
    key: string,
    store: LockStore,
    options: ResolvedLockOptions,
    ttl: number | null,
    restored?: { owner: string; expirationTime: number | null; fencingToken: number | null }
  ) {
    this.key = key
    this.#storeKey = options.prefix ? `${options.prefix}:${key}` : key
    this.#store = store
    this.#options = options
    this.#ttl = ttl
    this.#owner = restored?.owner ?? crypto.randomUUID()
    this.#expirationTime = restored?.expirationTime
      ? performance.now() + (restored.expirationTime - Date.now())
      : null
    this.#fencingToken = restored?.fencingToken ?? null
    this.#acquired = restored !== undefined
    this.#ownerUsed = restored !== undefined
    this.#reporter = new LockReporter(this, options)
  }

  /**
   * The key as the store sees it (with the prefix)
   */
  get storeKey(): string {
    return this.#storeKey
  }

  /**
   * Token of the last successful acquire: strictly greater than every
   * token handed out before for this key. Null before acquiring, or when
   * the store does not issue tokens.
   */
  get fencingToken(): number | null {
    return this.#fencingToken
  }

  /**
   * With `autoExtend`: aborted with E_LOCK_LOST once the watchdog finds
   * the lock lost. Undefined otherwise.
   */
  get lostSignal(): AbortSignal | undefined {
    return this.#watchdog?.signal
  }

  getOwner(): string {
    return this.#owner
  }

  getTtl(): number | null {
    return this.#ttl
  }

  serialize(): SerializedLock {
    return {
      key: this.key,
      owner: this.#owner,
      ttl: this.#ttl,
      expirationTime:
        this.#expirationTime === null
          ? null
          : Math.round(Date.now() + this.#expirationTime - performance.now()),
      store: this.#options.storeName,
      fencingToken: this.#fencingToken,
    }
  }

  /**
   * Tries until acquired, the attempts or the timeout run out (false),
   * or the signal aborts (rejects with its reason). Between tries the
   * store wakes us on release when it can; `retry.delay` is the fallback.
   */
  async acquire(acquireOptions?: LockAcquireOptions): Promise<boolean> {
    const options = checkAcquireOptions(acquireOptions)
    const retry =
      options.retry !== undefined
        ? resolveRetry(options.retry, this.#options.retry)
        : this.#options.retry
    const signal = options.signal ?? undefined
    const report = this.#reporter.acquireStarted()
    const startedAt = report.startedAt
    const maxAttempts = retry.attempts === null ? Infinity : Math.max(1, retry.attempts)
    const deadline = retry.timeout === null ? Infinity : startedAt + retry.timeout
    const owner = this.#nextOwner()
    const wait = { owner, report, startedAt, attempts: 0, arrival: arrivalAt(startedAt), signal }

    if (maxAttempts > 1 && othersWaiting(this.#store, this.#storeKey)) {
      const ms = Math.max(1, Math.min(retry.delay, deadline - startedAt))
      if (await this.#waitForRelease(ms, wait)) return this.#held(options.autoExtend)
    }

    while (true) {
      let result: AcquireResult
      const attemptedAt = performance.now()
      try {
        signal?.throwIfAborted()
        wait.attempts++
        /**
         * Without a deadline or a signal the store is awaited here, with no
         * async layer in between: the most common acquire is the shortest
         */
        result = asResult(
          deadline === Infinity && !signal
            ? await this.#store.save(this.#storeKey, owner, this.#ttl)
            : await this.#saveWithin(owner, deadline, signal)
        )
      } catch (error) {
        throw this.#failedTry(error, wait)
      }
      if (result.acquired) {
        this.#acquiredWith(result, attemptedAt, wait)
        return this.#held(options.autoExtend)
      }

      this.#holderRemainingTime = result.retryAfter
      const now = performance.now()
      if (wait.attempts >= maxAttempts || now >= deadline) {
        const reason = wait.attempts >= maxAttempts ? 'attempts' : 'timeout'
        this.#reporter.failed(report, wait.attempts, reason)
        return false
      }
      if (await this.#waitForRelease(nextWait(retry.delay, result, deadline - now), wait)) {
        return this.#held(options.autoExtend)
      }
    }
  }

  /**
   * One try, no waiting
   */
  acquireImmediately(): Promise<boolean> {
    return this.acquire({ retry: { attempts: 1 } })
  }

  /**
   * Acquires, runs the callback and releases in `finally`. Returns
   * `[true, result]`, or `[false, null]` when the lock was not acquired.
   */
  async run<T>(
    callback: (context: LockRunContext) => T | Promise<T>,
    options?: LockRunOptions
  ): Promise<[true, T] | [false, null]> {
    assertCallback(callback)
    if (!(await this.acquire(options))) return [false, null]
    return this.#runHeld(callback)
  }

  async runImmediately<T>(
    callback: (context: LockRunContext) => T | Promise<T>,
    options?: Pick<LockRunOptions, 'autoExtend'>
  ): Promise<[true, T] | [false, null]> {
    assertCallback(callback)
    const { autoExtend } = checkAcquireOptions(options)
    if (!(await this.acquire({ retry: { attempts: 1 }, autoExtend }))) {
      return [false, null]
    }
    return this.#runHeld(callback)
  }

  /**
   * Releases the lock when this owner holds it, else E_LOCK_NOT_OWNED
   */
  async release(): Promise<void> {
    this.#watchdog?.stop()
    const generation = ++this.#generation
    try {
      await this.#store.delete(this.#storeKey, this.#owner)
    } catch (error) {
      this.#reporter.releaseRefused(error)
      throw E_LOCK_STORAGE_ERROR.wrap(error, `release "${this.key}"`)
    } finally {
      if (generation === this.#generation) this.#acquired = false
    }
    /**
     * A newer acquisition of this object may already hold the lock
     */
    if (generation === this.#generation) this.#expirationTime = null
    this.#reporter.released()
  }

  /**
   * Releases the lock whoever holds it
   */
  async forceRelease(): Promise<void> {
    this.#watchdog?.stop()
    const generation = ++this.#generation
    try {
      await this.#store.forceDelete(this.#storeKey)
    } catch (error) {
      this.#reporter.releaseRefused(error)
      throw E_LOCK_STORAGE_ERROR.wrap(error, `force release "${this.key}"`)
    }
    if (generation === this.#generation) {
      this.#acquired = false
      this.#expirationTime = null
    }
    this.#reporter.released()
  }

  /**
   * Sets the expiry to now + ttl (the lock's own ttl by default) when
   * this owner still holds it, else E_LOCK_NOT_OWNED
   */
  async extend(ttl?: number | string): Promise<void> {
    const duration = ttl === undefined ? this.#ttl : parseRequiredTtl(ttl, 'extend ttl')
    if (duration === null) return this.#assertOwned()
    const startedAt = performance.now()
    const generation = this.#generation
    try {
      await this.#store.extend(this.#storeKey, this.#owner, duration)
    } catch (error) {
      throw E_LOCK_STORAGE_ERROR.wrap(error, `extend "${this.key}"`)
    }
    if (generation !== this.#generation) return
    this.#expirationTime = startedAt + duration
    this.#reporter.extended(duration)
  }

  /**
   * Whether anyone holds the lock, asking the store
   */
  async isLocked(): Promise<boolean> {
    try {
      return await this.#store.exists(this.#storeKey)
    } catch (error) {
      throw E_LOCK_STORAGE_ERROR.wrap(error, `check "${this.key}"`)
    }
  }

  /**
   * Whether this owner holds the lock, asking the store. Stores without
   * `owner()` answer from the local view.
   */
  async isOwned(): Promise<boolean> {
    if (!this.#store.owner) return this.#acquired && !this.isExpired()
    try {
      return (await this.#store.owner(this.#storeKey)) === this.#owner
    } catch (error) {
      throw E_LOCK_STORAGE_ERROR.wrap(error, `check "${this.key}"`)
    }
  }

  /**
   * Local view: whether the expiry time we know of has passed
   */
  isExpired(): boolean {
    return this.#expirationTime !== null && this.#expirationTime <= performance.now()
  }

  /**
   * After a refused try: the ms the holder still had then, as the store
   * told (`null`: it never expires, `undefined`: the store did not say).
   * Lets callers answer with a `Retry-After`.
   */
  getHolderRemainingTime(): number | null | undefined {
    return this.#holderRemainingTime
  }

  /**
   * Local view: ms left before expiry, null without expiry
   */
  getRemainingTime(): number | null {
    if (this.#expirationTime === null) return null
    return Math.max(0, Math.ceil(this.#expirationTime - performance.now()))
  }

  /**
   * Reports a try that failed; the error to throw is the signal's reason
   * or E_LOCK_STORAGE_ERROR
   */
  #failedTry(error: unknown, wait: AcquireWait): unknown {
    this.#reportFailed(wait, error)
    if (wait.signal?.aborted && error === wait.signal.reason) return error
    return E_LOCK_STORAGE_ERROR.wrap(error, `acquire "${this.key}"`)
  }

  #reportFailed(wait: AcquireWait, error: unknown) {
    const reason = wait.signal?.aborted ? 'aborted' : 'error'
    this.#reporter.failed(wait.report, wait.attempts, reason, error)
  }

  /**
   * One try with a deadline or a signal: see `saveWithin`
   */
  #saveWithin(
    owner: string,
    deadline: number,
    signal?: AbortSignal
  ): Promise<boolean | AcquireResult> {
    const save = () => this.#store.save(this.#storeKey, owner, this.#ttl)
    const releaseLate = () => {
      this.#store
        .delete(this.#storeKey, owner)
        .catch((error: unknown) => this.#reporter.lateReleaseFailed(error))
    }
    return saveWithin(save, releaseLate, deadline, signal, `acquire "${this.key}"`)
  }

  /**
   * The owner of a new acquire: a fresh one after the first, unless this
   * object still holds the lock (a second acquire must not take a second
   * semaphore slot). Until it succeeds, a lock still held keeps its owner,
   * for a release meanwhile.
   */
  #nextOwner(): string {
    const reuse = !this.#ownerUsed || (this.#acquired && !this.isExpired())
    const owner = reuse ? this.#owner : crypto.randomUUID()
    this.#ownerUsed = true
    if (!this.#acquired) this.#owner = owner
    return owner
  }

  async #assertOwned(): Promise<void> {
    if (!(await this.isOwned())) throw new E_LOCK_NOT_OWNED()
  }

  /**
   * Waits for a release; true when a release of this process handed the
   * lock to us on the way
   */
  async #waitForRelease(ms: number, wait: AcquireWait): Promise<boolean> {
    let handoff
    try {
      handoff = await waitForRelease(this.#store, this.#storeKey, ms, wait.signal, {
        owner: wait.owner,
        ttl: this.#ttl,
        waitingSince: wait.arrival,
      })
    } catch (error) {
      this.#reportFailed(wait, error)
      throw error
    }
    if (!handoff) return false
    this.#acquiredWith(handoff, handoff.startedAt, wait)
    return true
  }

  /**
   * The end of a successful acquire, by a try or a hand-over
   */
  #held(autoExtend: boolean | undefined): true {
    this.#watchdog?.stop()
    /**
     * The signal of an earlier acquisition's watchdog, maybe aborted, does
     * not speak for this one
     */
    this.#watchdog = undefined
    if (autoExtend && this.#ttl !== null) {
      this.#watchdog = new Watchdog(this, this.#ttl, (reason) => this.#lost(reason))
    }
    return true
  }

  #acquiredWith(
    result: Pick<AcquireResult, 'fencingToken'>,
    attemptedAt: number,
    wait: AcquireWait
  ) {
    this.#owner = wait.owner
    this.#acquired = true
    this.#generation++
    /**
     * Counting from before the store call keeps the local expiry on the
     * safe side of the store's
     */
    this.#expirationTime = this.#ttl === null ? null : attemptedAt + this.#ttl
    this.#fencingToken = result.fencingToken ?? null
    this.#reporter.acquired(wait.report, wait.attempts, this.#fencingToken)
  }

  async #runHeld<T>(callback: (context: LockRunContext) => T | Promise<T>): Promise<[true, T]> {
    const signal = this.#watchdog?.signal ?? new AbortController().signal
    const owner = this.#owner
    const throwIfLost = () => {
      if (this.isExpired() && !signal.aborted) {
        throw new E_LOCK_LOST(`Lock "${this.key}" was lost: its ttl ran out`)
      }
      signal.throwIfAborted()
    }
    try {
      const result = await callback({ signal, fencingToken: this.#fencingToken, throwIfLost })
      return [true, result]
    } finally {
      this.#watchdog?.stop()
      if (!signal.aborted) await this.#releaseAfterRun(owner)
      else this.#releaseLost(owner)
    }
  }

  /**
   * The watchdog gave the lock up, but the store may hold it still (an
   * extension answered too late): free it if this acquisition has it
   */
  #releaseLost(owner: string) {
    this.#store.delete(this.#storeKey, owner).catch(() => {})
  }

  /**
   * A failed release must not throw away the callback's result (or
   * replace its error): it is reported instead
   */
  async #releaseAfterRun(owner: string): Promise<void> {
    /**
     * The run overran its ttl and a newer acquisition of this object holds
     * the lock now: free only what this run may still hold
     */
    if (owner !== this.#owner) return this.#releaseLost(owner)
    try {
      await this.release()
    } catch (error) {
      if (error instanceof E_LOCK_NOT_OWNED) {
        this.#lost('the lock expired or was taken over before release')
      } else {
        this.#reporter.releaseFailed(error)
      }
    }
  }

  #lost(reason: string) {
    this.#acquired = false
    this.#generation++
    this.#reporter.lost(reason)
  }
}

/**
 * An acquire in progress, as its waits see it
 */
interface AcquireWait {
  /**
   * The owner this acquire takes the lock as
   */
  owner: string
  report: AcquireReport
  startedAt: number
  attempts: number
  /**
   * Its place in this process's line: the order of the acquire calls
   */
  arrival: number
  signal: AbortSignal | undefined
}

function asResult(answer: boolean | AcquireResult): AcquireResult {
  return typeof answer === 'boolean' ? { acquired: answer } : answer
}

function assertCallback(callback: unknown) {
  if (typeof callback !== 'function') {
    throw new E_INVALID_LOCK_CONFIG('run() and runImmediately() expect a callback function')
  }
}
