import { parseRequiredTtl } from './duration.ts'
import { E_LOCK_NOT_OWNED, E_LOCK_STORAGE_ERROR } from './errors.ts'
import { expiryAfter, LockHold, type RestoredHold } from './lock_hold.ts'
import { run, runImmediately, type RunEnd } from './lock_run.ts'
import { checkAcquireOptions, resolveRetry } from './options.ts'
import { PendingAcquire } from './pending_acquire.ts'
import { LockReporter } from './reporting.ts'
import { saveWithin } from './wait.ts'
import { othersWaiting, waitForRelease } from './waiting/main.ts'
import type {
  AcquireResult,
  Handoff,
  LockAcquireOptions,
  LockRunContext,
  LockRunOptions,
  LockStore,
  ResolvedLockOptions,
  SerializedLock,
} from './types.ts'

/**
 * One lock on one key, held by one owner. Each method but `acquire()` is
 * one store call; `acquire()` tries until it gets the lock (waiting:
 * src/waiting/). `run()`: lock_run.ts; what the object knows of its hold:
 * lock_hold.ts.
 */
export class Lock {
  readonly key: string
  #storeKey: string
  #store: LockStore
  #options: ResolvedLockOptions
  #ttl: number | null
  #hold: LockHold
  #reporter: LockReporter
  #holderRemainingTime: number | null | undefined

  constructor(
    key: string,
    store: LockStore,
    options: ResolvedLockOptions,
    ttl: number | null,
    restored?: RestoredHold
  ) {
    this.key = key
    this.#storeKey = options.prefix ? `${options.prefix}:${key}` : key
    this.#store = store
    this.#options = options
    this.#ttl = ttl
    this.#reporter = new LockReporter(this, options)
    this.#hold = new LockHold(this, this.#reporter, ttl, restored)
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
    return this.#hold.fencingToken
  }

  /**
   * With `autoExtend`: aborted with E_LOCK_LOST once the watchdog finds
   * the lock lost. Undefined otherwise.
   */
  get lostSignal(): AbortSignal | undefined {
    return this.#hold.lostSignal
  }

  getOwner(): string {
    return this.#hold.owner
  }

  getTtl(): number | null {
    return this.#ttl
  }

  serialize(): SerializedLock {
    return {
      key: this.key,
      owner: this.#hold.owner,
      ttl: this.#ttl,
      expirationTime: this.#hold.expirationTime(),
      store: this.#options.storeName,
      fencingToken: this.#hold.fencingToken,
    }
  }

  /**
   * Tries until acquired, the attempts or the timeout run out (false),
   * or the signal aborts (rejects with its reason). Between tries the
   * store wakes us on release when it can; `retry.delay` is the fallback.
   */
  async acquire(acquireOptions?: LockAcquireOptions): Promise<boolean> {
    const options = checkAcquireOptions(acquireOptions)
    const retry = resolveRetry(options.retry, this.#options.retry)
    const signal = options.signal ?? undefined
    const pending = new PendingAcquire(this.#reporter, this.#hold.nextOwner(), retry, signal)
    try {
      const { owner, deadline } = pending
      /**
       * The first try starts as the acquire does: no clock read of its own
       */
      let attemptedAt = pending.startedAt

      if (pending.mayWait && othersWaiting(this.#store, this.#storeKey)) {
        const handoff = await this.#waitForRelease(pending.firstWait(), pending)
        if (handoff) return this.#took(handoff, handoff.startedAt, pending, options)
        attemptedAt = performance.now()
      }

      while (true) {
        let result: AcquireResult
        try {
          signal?.throwIfAborted()
          pending.attempts++
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
          throw pending.failedTry(error, `acquire "${this.key}"`)
        }
        if (result.acquired) return this.#took(result, attemptedAt, pending, options)

        this.#holderRemainingTime = result.retryAfter
        const now = performance.now()
        if (pending.gaveUp(now)) return false
        const handoff = await this.#waitForRelease(pending.nextWait(result, now), pending)
        if (handoff) return this.#took(handoff, handoff.startedAt, pending, options)
        attemptedAt = performance.now()
      }
    } finally {
      this.#hold.acquireEnded()
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
  run<T>(
    callback: (context: LockRunContext) => T | Promise<T>,
    options?: LockRunOptions
  ): Promise<[true, T] | [false, null]> {
    return run(this, this.#runEnd(), callback, options)
  }

  runImmediately<T>(
    callback: (context: LockRunContext) => T | Promise<T>,
    options?: Pick<LockRunOptions, 'autoExtend'>
  ): Promise<[true, T] | [false, null]> {
    return runImmediately(this, this.#runEnd(), callback, options)
  }

  /**
   * Releases the lock when this owner holds it, else E_LOCK_NOT_OWNED
   */
  async release(): Promise<void> {
    const hold = this.#hold
    hold.stopWatchdog()
    const generation = ++hold.generation
    const telemetry = this.#reporter.releasing()
    try {
      await this.#store.delete(this.#storeKey, hold.owner)
    } catch (error) {
      this.#reporter.releaseRefused(telemetry, error)
      throw E_LOCK_STORAGE_ERROR.wrap(error, `release "${this.key}"`)
    } finally {
      if (generation === hold.generation) hold.acquired = false
    }
    /**
     * A newer acquisition of this object may already hold the lock
     */
    if (generation === hold.generation) hold.expiresAt = null
    this.#reporter.released(telemetry)
  }

  /**
   * Releases the lock whoever holds it
   */
  async forceRelease(): Promise<void> {
    const hold = this.#hold
    const watched = hold.stopWatchdog()
    const generation = ++hold.generation
    const telemetry = this.#reporter.releasing()
    try {
      await this.#store.forceDelete(this.#storeKey)
    } catch (error) {
      this.#reporter.releaseRefused(telemetry, error)
      /**
       * The lock may be held still: the watchdog goes on keeping it
       */
      if (watched && generation === hold.generation) hold.resumeWatchdog()
      throw E_LOCK_STORAGE_ERROR.wrap(error, `force release "${this.key}"`)
    }
    if (generation === hold.generation) {
      hold.acquired = false
      hold.expiresAt = null
    }
    this.#reporter.released(telemetry)
  }

  /**
   * Sets the expiry to now + ttl (the lock's own ttl by default) when
   * this owner still holds it, else E_LOCK_NOT_OWNED
   */
  async extend(ttl?: number | string): Promise<void> {
    const duration = ttl === undefined ? this.#ttl : parseRequiredTtl(ttl, 'extend ttl')
    if (duration === null) return this.#assertOwned()
    const startedAt = performance.now()
    const generation = this.#hold.generation
    await callStore(this, 'extend', () =>
      this.#store.extend(this.#storeKey, this.#hold.owner, duration)
    )
    if (generation !== this.#hold.generation) return
    this.#hold.expiresAt = expiryAfter(startedAt, duration)
    this.#reporter.extended(duration)
  }

  /**
   * Whether anyone holds the lock, asking the store
   */
  isLocked(): Promise<boolean> {
    return callStore(this, 'check', () => this.#store.exists(this.#storeKey))
  }

  /**
   * Whether this owner holds the lock, asking the store. Stores without
   * `owner()` answer from the local view.
   */
  async isOwned(): Promise<boolean> {
    const store = this.#store
    if (!store.owner) return this.#hold.acquired && !this.isExpired()
    return (await callStore(this, 'check', () => store.owner!(this.#storeKey))) === this.#hold.owner
  }

  /**
   * Local view: whether the expiry time we know of has passed
   */
  isExpired(): boolean {
    return this.#hold.isExpired()
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
    return this.#hold.remainingTime()
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
      /**
       * Another acquire of this object took the lock as the same owner: what
       * this try took ran out before
       */
      const hold = this.#hold
      if (hold.acquired && hold.owner === owner && !hold.isExpired()) return
      this.#store
        .delete(this.#storeKey, owner)
        .catch((error: unknown) => this.#reporter.lateReleaseFailed(error))
    }
    return saveWithin(save, releaseLate, deadline, signal, `acquire "${this.key}"`)
  }

  async #assertOwned(): Promise<void> {
    if (!(await this.isOwned())) throw new E_LOCK_NOT_OWNED()
  }

  /**
   * Waits for a release; resolves with the hand-over when a release of
   * this process gave the lock to us on the way
   */
  async #waitForRelease(ms: number, pending: PendingAcquire): Promise<Handoff | undefined> {
    try {
      const handoff = await waitForRelease(this.#store, this.#storeKey, ms, pending.signal, {
        owner: pending.owner,
        ttl: this.#ttl,
        waitingSince: pending.arrival,
      })
      return handoff || undefined
    } catch (error) {
      pending.failed(error)
      throw error
    }
  }

  /**
   * The store gave the lock to the pending acquire, by a try or a
   * hand-over: the end of a successful acquire
   */
  #took(
    result: Pick<AcquireResult, 'fencingToken'>,
    attemptedAt: number,
    pending: PendingAcquire,
    { autoExtend }: LockAcquireOptions
  ): true {
    this.#hold.took(pending.owner, result.fencingToken ?? null, attemptedAt)
    pending.acquired(this.#hold.fencingToken)
    this.#hold.watch(autoExtend)
    return true
  }

  #runEnd(): RunEnd {
    return {
      acquisition: () => this.#hold.acquisitions,
      watchdog: () => this.#hold.watchdog,
      releaseQuietly: (owner) => {
        this.#store.delete(this.#storeKey, owner).catch(() => {})
      },
      lost: (reason) => this.#hold.lost(reason),
      releaseFailed: (error) => this.#reporter.releaseFailed(error),
    }
  }
}

/**
 * A store call whose failure is E_LOCK_STORAGE_ERROR naming the action
 * and the lock's key
 */
export async function callStore<T>(
  lock: { readonly key: string },
  action: string,
  call: () => Promise<T>
): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw E_LOCK_STORAGE_ERROR.wrap(error, `${action} "${lock.key}"`)
  }
}

function asResult(answer: boolean | AcquireResult): AcquireResult {
  return typeof answer === 'boolean' ? { acquired: answer } : answer
}
