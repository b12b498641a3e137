import type { HttpContext } from '@adonisjs/core/http'
import type { LockStoresList } from './config.ts'
import type { Duration } from './locks.ts'

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
   * releasing it, reading and writing a replay record; with `wait`, taking
   * the lock is bounded by `wait` instead). Past it the request gets 503
   * before the route runs, or, after the route ran, the failure is logged
   * and the response goes out. Default: `'3s'`.
   */
  timeout?: Duration
  /**
   * With `idempotency`: store the response of a request carrying an
   * `Idempotency-Key` in `@adonisjs/cache` and replay it to retries
   * (with `Idempotency-Replayed: true`) instead of running the route again
   */
  replay?: true | LockReplayOptions
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
