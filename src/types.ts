import type { ConfigProvider } from '@adonisjs/core/types'
import type { HttpContext } from '@adonisjs/core/http'
import type { LockManager } from './lock_manager.ts'

/**
 * A duration: a number of milliseconds or a string such as
 * `'250ms'`, `'10s'`, `'2m'`, `'1h'`. `null` means "no expiry".
 */
export type Duration = number | string

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

export interface LockConfig<KnownStores extends Record<string, StoreEntry>> {
  default: keyof KnownStores
  stores: KnownStores
  ttl?: Duration | null
  prefix?: string
  retry?: RetryOptions
  /**
   * `false` turns off the OpenTelemetry spans and metrics of these locks
   */
  telemetry?: boolean
}

/**
 * Payloads of the events emitted on the AdonisJS emitter
 */
export interface LockEventBase {
  key: string
  store: string
  owner: string
}
export interface LockAcquiredEvent extends LockEventBase {
  waited: number
  attempts: number
  fencingToken: number | null
}
export interface LockFailedEvent extends LockEventBase {
  waited: number
  attempts: number
  reason: 'attempts' | 'timeout' | 'aborted' | 'error'
}
export interface LockExtendedEvent extends LockEventBase {
  ttl: number
}
export interface LockLostEvent extends LockEventBase {
  reason: string
}
export interface LockEvents {
  'lock:acquired': LockAcquiredEvent
  'lock:released': LockEventBase
  'lock:failed': LockFailedEvent
  'lock:extended': LockExtendedEvent
  'lock:lost': LockLostEvent
}

/**
 * The part of the AdonisJS emitter the locks use
 */
export interface LockEventEmitter {
  emit<K extends keyof LockEvents>(event: K, data: LockEvents[K]): unknown
  hasListeners?(event?: any): boolean
}

/**
 * The part of the AdonisJS logger the locks use
 */
export interface LockLogger {
  debug(obj: unknown, msg?: string): void
  warn(obj: unknown, msg?: string): void
  isLevelEnabled?(level: string): boolean
}

/**
 * Stores configured in the app, inferred by `InferLockStores`
 */
export interface LockStoresList {}

export type InferLockStores<T extends { stores: Record<string, StoreEntry> }> = {
  [K in keyof T['stores']]: T['stores'][K] extends ConfigProvider<infer A> ? A : T['stores'][K]
}

/**
 * The `locks` service
 */
export interface LockService extends LockManager<
  LockStoresList extends Record<string, StoreFactory>
    ? LockStoresList
    : Record<string, StoreFactory>
> {}

/**
 * Options of the `lock` HTTP middleware: `middleware.lock({ ... })`
 */
export interface LockMiddlewareOptions {
  /**
   * Expiry of the lock, in case the process dies mid-request. Longer
   * than the slowest request. Default: the config's `ttl` (or 30s).
   */
  ttl?: Duration
  /**
   * How long to wait for a duplicate to finish before answering 409.
   * Default: 0, answer at once. Not used for Idempotency-Key requests.
   */
  wait?: Duration
  /**
   * `'request'` (default): identical requests of one user (or IP) on the
   * route wait for each other. `'user'`: one request of a user at a time
   * on the route (per route params), whatever the body and query.
   */
  scope?: 'request' | 'user'
  /**
   * A key of your own, used as-is as the lock key (share it with
   * `locks.createLock()` elsewhere). `null` skips the lock for this
   * request; `undefined` keeps the default key.
   */
  key?: (ctx: HttpContext) => string | null | undefined | Promise<string | null | undefined>
  /**
   * Store of `config/lock.ts`; the default store otherwise
   */
  store?: [keyof LockStoresList] extends [never] ? string : keyof LockStoresList & string
  /**
   * `Idempotency-Key` header handling: `'required'` answers 400 without
   * it, `'optional'` falls back to the duplicate guard without it
   */
  idempotency?: 'required' | 'optional'
  /**
   * Bound of each store call of a guarded request (taking the lock,
   * releasing it, reading and writing a replay record). Past it the
   * request gets 503 before the route runs, or, after the route ran, the
   * failure is logged and the response goes out. Default: `'3s'`.
   */
  timeout?: Duration
  /**
   * With `idempotency`: store the response of a request carrying an
   * `Idempotency-Key` in `@adonisjs/cache` and replay it to retries
   * (with `Idempotency-Replayed: true`) instead of running the route again
   */
  replay?: true | LockReplayOptions
}

declare module '@adonisjs/core/types' {
  interface EventsList extends LockEvents {}
  interface ContainerBindings {
    'lock.manager': LockService
  }
}

/**
 * Where and how long the lock middleware keeps the responses it replays
 */
export interface LockReplayOptions {
  /**
   * Store of `config/cache.ts` (`@adonisjs/cache`); its default store
   * otherwise. Use one shared by every server (Redis, database).
   */
  store?: string
  /**
   * How long a response is replayed. Default: `'24h'`.
   */
  ttl?: Duration
  /**
   * Whether 5xx responses are stored too. Default: `false`, a retry
   * runs the route again after a server error.
   */
  serverErrors?: boolean
  /**
   * Largest body stored, in bytes; a larger response is not stored (and
   * a retry runs again). Default: 1 MiB.
   */
  maxBodySize?: number
  /**
   * Response headers replayed besides the built-in list (Content-Type,
   * Location, ETag, Content-Language, Cache-Control, ...). Never
   * `Set-Cookie`.
   */
  headers?: string[]
}
