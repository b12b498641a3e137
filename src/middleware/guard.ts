import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import {
  type E_IDEMPOTENCY_KEY_MISSING,
  type E_IDEMPOTENCY_KEY_REUSED,
  E_LOCK_NOT_OWNED,
  E_LOCK_STORAGE_ERROR,
  E_LOCK_TIMEOUT,
} from '../errors.ts'
import type { Lock } from '../lock.ts'
import type { LockFactory } from '../lock_factory.ts'
import type { RetryOptions } from '../types.ts'
import { settleWithin } from '../wait.ts'
import { retryAfterSeconds } from './retry_after.ts'
import type { Settings } from './settings.ts'

/**
 * Why a request is answered without running its route: 400, 409, 422, 503
 */
export type Refusal =
  | InstanceType<typeof E_IDEMPOTENCY_KEY_MISSING>
  | InstanceType<typeof E_IDEMPOTENCY_KEY_REUSED>
  | InstanceType<typeof E_LOCK_TIMEOUT>
  | InstanceType<typeof E_LOCK_STORAGE_ERROR>

/**
 * One guarded request
 */
export interface Guard {
  ctx: HttpContext
  settings: Settings
  factory: LockFactory
  ttl: number
}

/**
 * Takes the lock: undefined when taken, else why not (busy: 409 with a
 * `Retry-After`; store failed or did not answer in time: 503)
 */
export async function take(
  guard: Guard,
  lock: Lock,
  retry: RetryOptions,
  busyMessage: string
): Promise<Refusal | undefined> {
  try {
    if (await lock.acquire({ retry })) return undefined
  } catch (error) {
    if (error instanceof E_LOCK_STORAGE_ERROR) return error
    throw error
  }
  const refusal = new E_LOCK_TIMEOUT(busyMessage)
  refusal.publicMessage = busyMessage
  refusal.retryAfter = retryAfterSeconds(lock, guard.ttl, guard.settings.durations)
  return refusal
}

/**
 * Releases within the store timeout. The route has run: a failure is
 * logged and the response goes out; the lock expires after its ttl.
 */
export async function release(guard: Guard, lock: Lock): Promise<void> {
  const { ctx, settings } = guard
  const pending = lock.release()
  try {
    const released = await settleWithin(
      pending.then(() => true),
      settings.timeout
    )
    if (released) return
    pending.catch(() => {})
    ctx.logger.warn(
      { key: lock.key },
      `adonis-lock: releasing the request's lock took over ${settings.timeout} ms; it will expire after its ttl`
    )
  } catch (error) {
    if (error instanceof E_LOCK_NOT_OWNED) {
      ctx.logger.warn(
        { key: lock.key },
        "adonis-lock: the request's lock expired before the request ended; raise the middleware ttl"
      )
      return
    }
    ctx.logger.warn(
      { key: lock.key, err: error },
      "adonis-lock: releasing the request's lock failed; it will expire after its ttl"
    )
  }
}

/**
 * Runs the route, keeping its duration for `Retry-After`
 */
export async function runRoute(guard: Guard, next: NextFn) {
  const startedAt = performance.now()
  try {
    return await next()
  } finally {
    guard.settings.durations.add(performance.now() - startedAt)
  }
}
