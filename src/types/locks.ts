import type { LockEventEmitter, LockEvents, LockLogger } from './events.ts'

/**
 * A duration: a number of milliseconds or a string such as
 * `'250ms'`, `'10s'`, `'2m'`, `'1h'`. `null` means "no expiry".
 */
export type Duration = number | string

/**
 * How `acquire()` retries
 */
export interface RetryOptions {
  /**
   * Maximum number of tries. `null` = until `timeout`.
   * `0` and `1` both mean a single try.
   */
  attempts?: number | null
  /**
   * Fallback poll interval between tries (waiters are woken on release
   * when the store supports it)
   */
  delay?: Duration
  /**
   * Give up after this long. `null` = no timeout.
   */
  timeout?: Duration | null
}

export interface ResolvedRetryOptions {
  attempts: number | null
  delay: number
  timeout: number | null
}

export interface LockAcquireOptions {
  retry?: RetryOptions
  signal?: AbortSignal
  /**
   * Keep extending the lock every ttl/3 until it is released; when it is
   * lost, `lock.lostSignal` (and the `run()` callback's signal) aborts
   */
  autoExtend?: boolean
}

export type LockRunOptions = LockAcquireOptions

/**
 * Handed to `run()` callbacks
 */
export interface LockRunContext {
  /**
   * Aborted with E_LOCK_LOST when the lock is lost while the callback runs
   */
  signal: AbortSignal
  fencingToken: number | null
  /**
   * Throws E_LOCK_LOST when the lock's local expiry has passed (on a
   * monotonic clock, so a pause of the process cannot hide it) or the
   * signal aborted. Call it right before each write the lock protects.
   */
  throwIfLost(): void
}

/**
 * Defaults of every lock created from a factory
 */
export interface LockFactoryOptions {
  ttl?: Duration | null
  retry?: RetryOptions
  /**
   * Prepended to every key, as `prefix:key`
   */
  prefix?: string
  /**
   * Name of the store, recorded in serialized locks
   */
  storeName?: string
  emitter?: LockEventEmitter
  logger?: LockLogger
  /**
   * Spans and metrics through @opentelemetry/api (default `true`); a
   * no-op until the application registers an OpenTelemetry SDK
   */
  telemetry?: boolean
}

export interface ResolvedLockOptions {
  ttl: number | null
  retry: ResolvedRetryOptions
  prefix: string
  storeName: string
  emitter?: LockEventEmitter
  /**
   * Whether `emitter` has listeners for an event, answered from a cache
   * (see listened_events.ts)
   */
  listened?: (event: keyof LockEvents) => boolean
  logger?: LockLogger
  telemetry: boolean
}

export interface SerializedLock {
  key: string
  owner: string
  ttl: number | null
  expirationTime: number | null
  store: string
  fencingToken: number | null
  /**
   * Set for semaphores: how many owners may hold the key at once
   */
  limit?: number
}
