import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import { parseRequiredDuration, parseRequiredTtl } from '../duration.ts'
import {
  E_IDEMPOTENCY_KEY_MISSING,
  E_IDEMPOTENCY_KEY_REUSED,
  E_INVALID_DURATION,
  E_INVALID_LOCK_CONFIG,
  E_LOCK_TIMEOUT,
} from '../errors.ts'
import type { Lock } from '../lock.ts'
import type { LockFactory } from '../lock_factory.ts'
import { DEFAULT_TTL } from '../options.ts'
import type { LockMiddlewareOptions, RetryOptions } from '../types.ts'
import { canonicalJson, payloadHash, sha256 } from './fingerprint.ts'

interface Settings {
  ttl: number | undefined
  retry: RetryOptions
  scope: 'request' | 'user'
  key: LockMiddlewareOptions['key']
  store: string | undefined
  idempotency: 'required' | 'optional' | undefined
}

const ONE_TRY: RetryOptions = { attempts: 1 }
const NO_OPTIONS: LockMiddlewareOptions = {}

/**
 * Route options objects are created once, when the routes are defined
 */
const resolved = new WeakMap<LockMiddlewareOptions, Settings>()

/**
 * Refuses a request while the same one (same user or IP, route, params,
 * query and body) is still running: 409 with `Retry-After`. The lock is
 * taken before the route handler and released in `finally`, only when
 * it was taken. A failing store answers 503: letting requests through
 * unguarded is what this middleware exists to prevent.
 */
export default class LockMiddleware {
  async handle(ctx: HttpContext, next: NextFn, options: LockMiddlewareOptions = NO_OPTIONS) {
    const settings = resolveSettings(options)
    const custom = settings.key ? await settings.key(ctx) : undefined
    if (custom === null) return next()

    const locks = await ctx.containerResolver.make('lock.manager')
    const factory = locks.use(settings.store)
    const ttl = settings.ttl ?? factory.options.ttl ?? DEFAULT_TTL

    if (settings.idempotency) {
      const idempotencyKey = readIdempotencyKey(ctx)
      if (idempotencyKey !== null) {
        return guardIdempotent(ctx, next, factory, ttl, custom ?? identity(ctx), idempotencyKey)
      }
      if (settings.idempotency === 'required') throw new E_IDEMPOTENCY_KEY_MISSING()
    }

    const lock = factory.createLock(custom ?? defaultKey(ctx, settings.scope), ttl)
    const [acquired, result] = await lock.run(() => next(), { retry: settings.retry })
    if (!acquired) throw busy(lock, ttl, 'A conflicting request is still being processed')
    return result
  }
}

/**
 * Two locks per Idempotency-Key, so every process can tell "same request
 * still in flight" (409) from "key reused for another payload" (422)
 * with nothing but the store:
 *
 * - `<key>:<fingerprint>` is taken first: holding it means a request
 *   with this key and this payload is in flight, so failing to take it
 *   is a 409;
 * - `<key>` is taken next: failing to take it while holding our own
 *   fingerprint lock means the holder sent another payload, a 422.
 *
 * Released in reverse order, so the key lock is never held without its
 * fingerprint lock.
 */
async function guardIdempotent(
  ctx: HttpContext,
  next: NextFn,
  factory: LockFactory,
  ttl: number,
  scope: string,
  idempotencyKey: string
) {
  const key = `idempotency:${scope}:${sha256(idempotencyKey)}`
  const fingerprint = sha256(
    canonicalJson([ctx.request.method(), routePattern(ctx), payloadHash(ctx)])
  )
  const fingerprintLock = factory.createLock(`${key}:${fingerprint}`, ttl)
  const keyLock = factory.createLock(key, ttl)

  const [acquired, result] = await fingerprintLock.run(
    async () => {
      const [ran, response] = await keyLock.run(() => next(), { retry: ONE_TRY })
      if (!ran) throw new E_IDEMPOTENCY_KEY_REUSED()
      return response
    },
    { retry: ONE_TRY }
  )
  if (!acquired) {
    throw busy(fingerprintLock, ttl, 'A request with this Idempotency-Key is still being processed')
  }
  return result
}

/**
 * `Retry-After` is when the holder's lock expires at the latest, when the
 * store told us, else our own ttl
 */
function busy(lock: Lock, ttl: number, message: string) {
  const remaining = lock.getHolderRemainingTime()
  const error = new E_LOCK_TIMEOUT(message)
  error.retryAfter = Math.max(1, Math.ceil((remaining ?? ttl) / 1000))
  return error
}

function defaultKey(ctx: HttpContext, scope: Settings['scope']): string {
  const target = scope === 'user' ? sha256(canonicalJson(ctx.params ?? {})) : payloadHash(ctx)
  return `http:${identity(ctx)}:${ctx.request.method()}:${routePattern(ctx)}:${target}`
}

/**
 * The authenticated user when @adonisjs/auth authenticated one before
 * this middleware, else the client IP
 */
function identity(ctx: HttpContext): string {
  let id: unknown
  try {
    id = (ctx as { auth?: { user?: { id?: unknown } } }).auth?.user?.id
  } catch {
    id = undefined
  }
  if (id !== undefined && id !== null && id !== '') return `user:${String(id)}`
  return `ip:${ctx.request.ip()}`
}

function routePattern(ctx: HttpContext): string {
  return ctx.route?.pattern ?? ctx.request.url()
}

/**
 * The header is a structured-field string (`"abc"`); plain tokens are
 * accepted too. Empty counts as missing.
 */
function readIdempotencyKey(ctx: HttpContext): string | null {
  let value = ctx.request.header('idempotency-key')?.trim()
  if (value && value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    value = value.slice(1, -1).replace(/\\(["\\])/g, '$1')
  }
  return value ? value : null
}

function resolveSettings(options: LockMiddlewareOptions): Settings {
  let settings = resolved.get(options)
  if (settings) return settings
  if (options === null || typeof options !== 'object') {
    throw new E_INVALID_LOCK_CONFIG('Invalid lock middleware options: expected an object')
  }
  const { scope = 'request', key, store, idempotency } = options
  if (scope !== 'request' && scope !== 'user') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid lock middleware "scope" ${JSON.stringify(scope)}: expected "request" or "user"`
    )
  }
  if (key !== undefined && typeof key !== 'function') {
    throw new E_INVALID_LOCK_CONFIG('Invalid lock middleware "key": expected a function')
  }
  if (store !== undefined && (typeof store !== 'string' || store === '')) {
    throw new E_INVALID_LOCK_CONFIG('Invalid lock middleware "store": expected a store name')
  }
  if (idempotency !== undefined && idempotency !== 'required' && idempotency !== 'optional') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid lock middleware "idempotency" ${JSON.stringify(idempotency)}: expected "required" or "optional"`
    )
  }
  const wait = options.wait === undefined ? 0 : duration(options.wait, 'wait')
  settings = {
    ttl: options.ttl === undefined ? undefined : duration(options.ttl, 'ttl'),
    retry: wait > 0 ? { attempts: null, timeout: wait } : ONE_TRY,
    scope,
    key,
    store,
    idempotency,
  }
  resolved.set(options, settings)
  return settings
}

function duration(value: unknown, field: string): number {
  try {
    return field === 'ttl' ? parseRequiredTtl(value, field) : parseRequiredDuration(value, field)
  } catch (error) {
    if (!(error instanceof E_INVALID_DURATION)) throw error
    throw new E_INVALID_LOCK_CONFIG(`Invalid lock middleware option: ${error.message}`, {
      cause: error,
    })
  }
}
