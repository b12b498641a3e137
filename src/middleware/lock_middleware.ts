import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import { E_IDEMPOTENCY_KEY_MISSING } from '../errors.ts'
import { DEFAULT_TTL } from '../options.ts'
import { markRequestRefused } from '../telemetry/spans.ts'
import type { LockMiddlewareOptions } from '../types.ts'
import { canonicalJson, payloadHash, sha256 } from './fingerprint.ts'
import { release, runRoute, take, type Guard, type Refusal } from './guard.ts'
import { guardIdempotent, readIdempotencyKey, routePattern } from './idempotency.ts'
import { resolveSettings, type Settings } from './settings.ts'

const NO_OPTIONS: LockMiddlewareOptions = {}

/**
 * Refuses a request while the same one (same user or IP, route, params,
 * query and body) is still running: 409 with `Retry-After`. The lock is
 * taken before the route handler and released after it, only when it
 * was taken. A failing store answers 503: letting requests through
 * unguarded is what this middleware exists to prevent.
 */
export default class LockMiddleware {
  async handle(ctx: HttpContext, next: NextFn, options: LockMiddlewareOptions = NO_OPTIONS) {
    const settings = resolveSettings(options)
    const custom = settings.key ? await settings.key(ctx) : undefined
    if (custom === null) return next()

    const locks = await ctx.containerResolver.make('lock.manager')
    const factory = locks.use(settings.store)
    const guard: Guard = {
      ctx,
      settings,
      factory,
      ttl: settings.ttl ?? factory.options.ttl ?? DEFAULT_TTL,
    }

    let refusal: Refusal | undefined
    const idempotencyKey = settings.idempotency ? readIdempotencyKey(ctx) : null
    if (idempotencyKey !== null) {
      refusal = await guardIdempotent(guard, next, custom ?? identity(ctx), idempotencyKey)
    } else if (settings.idempotency === 'required') {
      refusal = new E_IDEMPOTENCY_KEY_MISSING()
    } else {
      refusal = await guardDuplicates(guard, next, custom ?? defaultKey(ctx, settings.scope))
    }
    if (refusal) refuse(ctx, refusal)
  }
}

/**
 * Every refusal (400, 409, 422, 503) leaves here: thrown to the app's
 * exception handler, which renders it through the error's own `handle`
 * (public text and code only); the request's span gets status and code
 */
function refuse(ctx: HttpContext, refusal: Refusal): never {
  ctx.logger.debug({ err: refusal }, `adonis-lock: request refused with ${refusal.status}`)
  markRequestRefused(refusal.status, refusal.code!)
  throw refusal
}

async function guardDuplicates(
  guard: Guard,
  next: NextFn,
  key: string
): Promise<Refusal | undefined> {
  const lock = guard.factory.createLock(key, guard.ttl)
  const refusal = await take(
    guard,
    lock,
    guard.settings.retry,
    'A conflicting request is still being processed'
  )
  if (refusal) return refusal
  try {
    await runRoute(guard, next)
  } finally {
    await release(guard, lock)
  }
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
