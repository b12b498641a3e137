import { parseRequiredTtl } from './duration.ts'
import {
  E_INVALID_LOCK_CONFIG,
  E_LOCK_LOST,
  E_LOCK_NOT_OWNED,
  E_LOCK_STORAGE_ERROR,
} from './errors.ts'
import { checkAcquireOptions, resolveRetry } from './options.ts'
import { settleWithin, sleep } from './wait.ts'
import { acquireStarted, type AcquireTelemetry, type HoldTelemetry } from './telemetry/spans.ts'
import type {
  AcquireResult,
  Handoff,
  LockAcquireOptions,
  LockEvents,
  LockRunContext,
  LockRunOptions,
  LockStore,
  ResolvedLockOptions,
  SerializedLock,
} from './types.ts'

type FailureReason = LockEvents['lock:failed']['reason']

/**
 * With a timeout, a store call of `acquire()` gets at least this long to
 * answer, even when it starts right at the deadline: a healthy store never
 * misses it, and a stalled one costs at most this much past the timeout.
 */
export const STORE_ANSWER_GRACE = 1000

let arrivals = 0

/**
 * When an acquire started, as its waits give it to the store: `startedAt`
 * plus a fraction of a ms that grows with each acquire of this process
 * that waits (wrapping at 1000), so that two waiters whose acquires
 * started in the same millisecond do not tie for their place in line
 */
function arrivalAfter(startedAt: number): number {
  arrivals = (arrivals + 1) % 1000
  return startedAt + arrivals / 1000
}

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
  #watchdog?: { controller: AbortController; stop: () => void }
  #holderRemainingTime: number | null | undefined
  #acquiring?: AcquireTelemetry
  #hold?: HoldTelemetry
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
    this.#expirationTime = restored?.expirationTime ?? null
    this.#fencingToken = restored?.fencingToken ?? null
    this.#acquired = restored !== undefined
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
    return this.#watchdog?.controller.signal
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
      expirationTime: this.#expirationTime,
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
    const startedAt = Date.now()
    const maxAttempts = retry.attempts === null ? Infinity : Math.max(1, retry.attempts)
    const deadline = retry.timeout === null ? Infinity : startedAt + retry.timeout
    let attempts = 0
    let arrival: number | undefined
    if (this.#options.telemetry) this.#acquiring = acquireStarted(this, this.#options.storeName)

    if (maxAttempts > 1 && this.#store.hasWaiters?.(this.#storeKey)) {
      const wait = Math.max(1, Math.min(retry.delay, deadline - startedAt))
      arrival ??= arrivalAfter(startedAt)
      if (await this.#waitForRelease(wait, signal, startedAt, arrival, attempts)) {
        return this.#held(options.autoExtend)
      }
    }

    while (true) {
      let result: AcquireResult
      const attemptedAt = Date.now()
      try {
        signal?.throwIfAborted()
        attempts++
        /**
         * Without a deadline or a signal the store is awaited here: no
         * async layer in between, the most common acquire is also the
         * shortest
         */
        result = asResult(
          deadline === Infinity && !signal
            ? await this.#store.save(this.#storeKey, this.#owner, this.#ttl)
            : await this.#saveWithin(deadline, signal)
        )
      } catch (error) {
        this.#failed(startedAt, attempts, signal?.aborted ? 'aborted' : 'error', error)
        if (signal?.aborted && error === signal.reason) throw error
        throw E_LOCK_STORAGE_ERROR.wrap(error, `acquire "${this.key}"`)
      }
      if (result.acquired) {
        this.#acquiredWith(result, startedAt, attemptedAt, attempts)
        return this.#held(options.autoExtend)
      }

      this.#holderRemainingTime = result.retryAfter
      const now = Date.now()
      if (attempts >= maxAttempts || now >= deadline) {
        this.#failed(startedAt, attempts, attempts >= maxAttempts ? 'attempts' : 'timeout')
        return false
      }

      /**
       * Jitter spreads pollers apart; the holder's remaining ttl caps the
       * sleep so we retry the moment it expires
       */
      let wait = retry.delay * (0.5 + Math.random() / 2)
      if (result.retryAfter !== undefined && result.retryAfter !== null) {
        wait = Math.min(wait, result.retryAfter)
      }
      /**
       * At least 1 ms, so a store answering "expires now" cannot spin us
       */
      wait = Math.max(1, Math.min(wait, deadline - now))
      arrival ??= arrivalAfter(startedAt)
      if (await this.#waitForRelease(wait, signal, startedAt, arrival, attempts)) {
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
    this.#stopWatchdog()
    this.#generation++
    try {
      await this.#store.delete(this.#storeKey, this.#owner)
    } catch (error) {
      this.#hold?.released(error)
      throw E_LOCK_STORAGE_ERROR.wrap(error, `release "${this.key}"`)
    } finally {
      this.#acquired = false
    }
    this.#hold?.released()
    this.#expirationTime = null
    if (this.#reports('lock:released')) this.#emit('lock:released', this.#eventBase())
  }

  /**
   * Releases the lock whoever holds it
   */
  async forceRelease(): Promise<void> {
    this.#stopWatchdog()
    this.#generation++
    try {
      await this.#store.forceDelete(this.#storeKey)
    } catch (error) {
      throw E_LOCK_STORAGE_ERROR.wrap(error, `force release "${this.key}"`)
    }
    this.#hold?.released()
    this.#acquired = false
    this.#expirationTime = null
    if (this.#reports('lock:released')) this.#emit('lock:released', this.#eventBase())
  }

  /**
   * Sets the expiry to now + ttl (the lock's own ttl by default) when
   * this owner still holds it, else E_LOCK_NOT_OWNED
   */
  async extend(ttl?: number | string): Promise<void> {
    const duration = ttl === undefined ? this.#ttl : parseRequiredTtl(ttl, 'extend ttl')
    if (duration === null) return this.#assertOwned()
    const startedAt = Date.now()
    const generation = this.#generation
    try {
      await this.#store.extend(this.#storeKey, this.#owner, duration)
    } catch (error) {
      throw E_LOCK_STORAGE_ERROR.wrap(error, `extend "${this.key}"`)
    }
    if (generation !== this.#generation) return
    this.#expirationTime = startedAt + duration
    this.#hold?.extended(duration)
    if (this.#reports('lock:extended')) {
      this.#emit('lock:extended', { ...this.#eventBase(), ttl: duration })
    }
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
    return this.#expirationTime !== null && this.#expirationTime <= Date.now()
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
    return Math.max(0, this.#expirationTime - Date.now())
  }

  /**
   * One try with a deadline or a signal. A store that does not answer by
   * the deadline (stalled server, offline queue) fails the try rather
   * than hold the caller past its timeout, and an abort does not wait for
   * it; should it take the lock after all, it is released at once.
   */
  async #saveWithin(deadline: number, signal?: AbortSignal): Promise<boolean | AcquireResult> {
    const pending = Promise.resolve(this.#store.save(this.#storeKey, this.#owner, this.#ttl))
    const bound = Math.max(deadline - Date.now(), STORE_ANSWER_GRACE)
    const answer = await settleWithin(
      pending.then((value) => ({ value })),
      bound,
      signal
    ).catch((error) => {
      if (signal?.aborted) this.#releaseLate(pending)
      throw error
    })
    if (!answer) {
      this.#releaseLate(pending)
      throw new E_LOCK_STORAGE_ERROR(
        `acquire "${this.key}": the store did not answer within ${bound} ms`
      )
    }
    return answer.value
  }

  /**
   * Releases what a try we gave up on took, when its answer comes
   */
  #releaseLate(pending: Promise<boolean | AcquireResult>) {
    pending.then(
      async (late) => {
        if (late !== true && (typeof late !== 'object' || !late.acquired)) return
        await this.#store.delete(this.#storeKey, this.#owner).catch((error: unknown) => {
          this.#options.logger?.warn(
            { key: this.key, store: this.#options.storeName, owner: this.#owner, err: error },
            'adonis-lock: could not release a lock taken after its acquire gave up; it will expire after its ttl'
          )
        })
      },
      () => {}
    )
  }

  async #assertOwned(): Promise<void> {
    if (!(await this.isOwned())) throw new E_LOCK_NOT_OWNED()
  }

  /**
   * Waits for a release; true when a release of this process handed the
   * lock to us on the way
   */
  async #waitForRelease(
    ms: number,
    signal: AbortSignal | undefined,
    startedAt: number,
    arrival: number,
    attempts: number
  ): Promise<boolean> {
    let handoff: Handoff | void
    try {
      if (!this.#store.waitForRelease) return await sleep(ms, signal).then(() => false)
      handoff = await this.#store.waitForRelease(this.#storeKey, ms, signal, {
        owner: this.#owner,
        ttl: this.#ttl,
        waitingSince: arrival,
      })
    } catch (error) {
      this.#failed(startedAt, attempts, signal?.aborted ? 'aborted' : 'error', error)
      throw error
    }
    if (!handoff) return false
    this.#acquiredWith(handoff, startedAt, handoff.startedAt, attempts)
    return true
  }

  /**
   * The end of a successful acquire, by a try or a hand-over
   */
  #held(autoExtend: boolean | undefined): true {
    if (autoExtend) {
      this.#startWatchdog()
    } else {
      /**
       * The signal of an earlier acquisition's watchdog, maybe aborted,
       * does not speak for this one
       */
      this.#stopWatchdog()
      this.#watchdog = undefined
    }
    return true
  }

  #acquiredWith(
    result: Pick<AcquireResult, 'fencingToken'>,
    startedAt: number,
    attemptedAt: number,
    attempts: number
  ) {
    this.#acquired = true
    this.#generation++
    /**
     * Counting from before the store call keeps the local expiry on the
     * safe side of the store's
     */
    this.#expirationTime = this.#ttl === null ? null : attemptedAt + this.#ttl
    this.#fencingToken = result.fencingToken ?? null
    this.#hold = this.#acquiring?.acquired(this.#fencingToken, attempts)
    if (!this.#reports('lock:acquired')) return
    this.#emit('lock:acquired', {
      ...this.#eventBase(),
      waited: Date.now() - startedAt,
      attempts,
      fencingToken: this.#fencingToken,
    })
  }

  #failed(startedAt: number, attempts: number, reason: FailureReason, error?: unknown) {
    this.#acquiring?.ended(reason, attempts, error)
    if (!this.#reports('lock:failed')) return
    this.#emit('lock:failed', {
      ...this.#eventBase(),
      waited: Date.now() - startedAt,
      attempts,
      reason,
    })
  }

  async #runHeld<T>(callback: (context: LockRunContext) => T | Promise<T>): Promise<[true, T]> {
    const signal = this.#watchdog?.controller.signal ?? new AbortController().signal
    try {
      const result = await callback({ signal, fencingToken: this.#fencingToken })
      return [true, result]
    } finally {
      this.#stopWatchdog()
      if (!signal.aborted) await this.#releaseAfterRun()
    }
  }

  /**
   * A failed release must not throw away the callback's result (or
   * replace its error): it is reported instead
   */
  async #releaseAfterRun(): Promise<void> {
    try {
      await this.release()
    } catch (error) {
      if (error instanceof E_LOCK_NOT_OWNED) {
        this.#lost('the lock expired or was taken over before release')
      } else {
        this.#options.logger?.warn(
          { key: this.key, store: this.#options.storeName, err: error },
          'adonis-lock: releasing the lock failed; it will expire after its ttl'
        )
      }
    }
  }

  /**
   * Extends every ttl/3 until stopped. When an extension is refused, or
   * none succeeds before the lock's local expiry (the store failing or
   * stalling), `lostSignal` aborts with E_LOCK_LOST.
   */
  #startWatchdog() {
    this.#stopWatchdog()
    if (this.#ttl === null) return
    const interval = Math.max(1, this.#ttl / 3)
    const controller = new AbortController()
    let tickTimer: NodeJS.Timeout | undefined
    let expiryTimer: NodeJS.Timeout | undefined
    let stopped = false
    let lastError: unknown
    const stop = () => {
      stopped = true
      clearTimeout(tickTimer)
      clearTimeout(expiryTimer)
    }
    const lose = (reason: string, cause: unknown) => {
      if (stopped) return
      stop()
      this.#lost(reason)
      controller.abort(new E_LOCK_LOST(`Lock "${this.key}" was lost: ${reason}`, { cause }))
    }
    /**
     * A stalled store never fails the extension: the expiry timer is what
     * notices that the lock may be gone
     */
    const armExpiry = () => {
      clearTimeout(expiryTimer)
      expiryTimer = setTimeout(() => {
        lose(
          lastError === undefined
            ? 'no extension was confirmed before it expired'
            : `extending failed until it expired: ${errorMessage(lastError)}`,
          lastError
        )
      }, this.getRemainingTime() ?? 0)
    }
    const tick = async () => {
      try {
        await this.extend()
        if (stopped) return
        lastError = undefined
        armExpiry()
      } catch (error) {
        if (stopped) return
        if (error instanceof E_LOCK_NOT_OWNED) return lose(errorMessage(error), error)
        lastError = error
      }
      tickTimer = setTimeout(tick, interval)
    }
    armExpiry()
    tickTimer = setTimeout(tick, interval)
    this.#watchdog = { controller, stop }
  }

  #stopWatchdog() {
    this.#watchdog?.stop()
  }

  #lost(reason: string) {
    this.#acquired = false
    this.#hold?.lost(reason)
    this.#generation++
    this.#options.logger?.warn(
      { key: this.key, store: this.#options.storeName, owner: this.#owner, reason },
      'adonis-lock: lock lost'
    )
    if (this.#reports('lock:lost')) this.#emit('lock:lost', { ...this.#eventBase(), reason })
  }

  #eventBase() {
    return { key: this.key, store: this.#options.storeName, owner: this.#owner }
  }

  /**
   * Whether the event has listeners or debug logs are on: callers build a
   * payload only then, so an unused event costs this check alone
   */
  #reports(event: keyof LockEvents): boolean {
    return (
      (this.#options.listened?.(event) ?? false) ||
      (this.#options.logger?.isLevelEnabled?.('debug') ?? false)
    )
  }

  /**
   * Emits the event and writes it as a debug log
   */
  #emit<K extends keyof LockEvents>(event: K, data: LockEvents[K]) {
    const { emitter, logger, listened } = this.#options
    if (logger?.isLevelEnabled?.('debug')) logger.debug(data, event)
    if (listened?.(event)) emitter!.emit(event, data)
  }
}

function asResult(answer: boolean | AcquireResult): AcquireResult {
  return typeof answer === 'boolean' ? { acquired: answer } : answer
}

function assertCallback(callback: unknown) {
  if (typeof callback !== 'function') {
    throw new E_INVALID_LOCK_CONFIG('run() and runImmediately() expect a callback function')
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
