import { Exception } from '@adonisjs/core/exceptions'
import type { HttpContext } from '@adonisjs/core/http'
import { describe } from './describe.ts'

/**
 * An error rendered with its code, which the default JSON rendering
 * drops: clients tell a 503 worth a retry or a missing header by it.
 * The client sees the class's own message, or `publicMessage`: never
 * `message`, which may name lock keys, hosts or driver errors.
 */
class CodedHttpException extends Exception {
  /**
   * Text meant for the client, set by whoever raised the error
   */
  publicMessage?: string

  handle(error: this, ctx: HttpContext) {
    return respond(error, ctx)
  }
}

/**
 * Release or extend of a lock this owner does not hold (anymore)
 */
export const E_LOCK_NOT_OWNED = class LockNotOwnedException extends Exception {
  static status = 409
  static code = 'E_LOCK_NOT_OWNED'
  static message = 'The lock is not owned by this owner, or it has expired'
}

/**
 * The reason of a `run()` signal aborted because the lock was lost
 */
export const E_LOCK_LOST = class LockLostException extends Exception {
  static status = 409
  static code = 'E_LOCK_LOST'
  static message = 'The lock was lost while the work was running'
}

/**
 * The lock middleware's 409: the same request still holds its lock (after
 * `wait`, if set); `retryAfter` becomes the `Retry-After` header
 */
export const E_LOCK_TIMEOUT = class LockTimeoutException extends CodedHttpException {
  static status = 409
  static code = 'E_LOCK_TIMEOUT'
  static message = 'Timed out while waiting for the lock'

  /**
   * Seconds after which trying again makes sense, sent as `Retry-After`
   */
  retryAfter?: number

  handle(error: this, ctx: HttpContext) {
    if (error.retryAfter !== undefined) ctx.response.header('Retry-After', error.retryAfter)
    return respond(
      error,
      ctx,
      error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }
    )
  }
}

/**
 * Every backend failure, with the original error as `cause`
 */
export const E_LOCK_STORAGE_ERROR = class LockStorageErrorException extends CodedHttpException {
  static status = 503
  static code = 'E_LOCK_STORAGE_ERROR'
  static message = 'The lock store failed'

  constructor(message: string, options?: ErrorOptions) {
    super(`${E_LOCK_STORAGE_ERROR.message}: ${message}`, options)
  }

  /**
   * Wraps a store failure, leaving lock errors as they are
   */
  static wrap(error: unknown, action: string): Error {
    if (error instanceof E_LOCK_STORAGE_ERROR || error instanceof E_LOCK_NOT_OWNED) return error
    const reason = error instanceof Error ? error.message : String(error)
    return new E_LOCK_STORAGE_ERROR(`${action}: ${reason}`, { cause: error })
  }
}

export const E_UNKNOWN_LOCK_STORE = class UnknownLockStoreException extends Exception {
  static status = 500
  static code = 'E_UNKNOWN_LOCK_STORE'

  constructor(name: unknown, configured: string[]) {
    const list = configured.length ? configured.map((store) => `"${store}"`).join(', ') : 'none'
    super(`Unknown lock store "${String(name)}". Configured stores: ${list}`)
  }
}

export const E_INVALID_LOCK_KEY = class InvalidLockKeyException extends Exception {
  static status = 500
  static code = 'E_INVALID_LOCK_KEY'
}

export const E_INVALID_DURATION = class InvalidDurationException extends Exception {
  static status = 500
  static code = 'E_INVALID_DURATION'

  constructor(
    value: unknown,
    field = 'duration',
    rule = 'Use a number of ms, or a string like "250ms", "10s", "2m"'
  ) {
    super(`Invalid ${field} ${describe(value)}. ${rule}`)
  }
}

export const E_INVALID_LOCK_CONFIG = class InvalidLockConfigException extends Exception {
  static status = 500
  static code = 'E_INVALID_LOCK_CONFIG'
}

/**
 * A semaphore limit that is not a positive integer
 */
export const E_INVALID_SEMAPHORE_LIMIT = class InvalidSemaphoreLimitException extends Exception {
  static status = 500
  static code = 'E_INVALID_SEMAPHORE_LIMIT'
}

/**
 * `createSemaphore()` on a store that does not implement SemaphoreStore
 */
export const E_SEMAPHORE_NOT_SUPPORTED = class SemaphoreNotSupportedException extends Exception {
  static status = 500
  static code = 'E_SEMAPHORE_NOT_SUPPORTED'
}

/**
 * `restoreLock()` given something else than `lock.serialize()` output
 */
export const E_INVALID_SERIALIZED_LOCK = class InvalidSerializedLockException extends Exception {
  static status = 500
  static code = 'E_INVALID_SERIALIZED_LOCK'
}

/**
 * The lock middleware's idempotency mode got no `Idempotency-Key` header
 * on a route that requires one
 */
export const E_IDEMPOTENCY_KEY_MISSING = class IdempotencyKeyMissingException extends CodedHttpException {
  static status = 400
  static code = 'E_IDEMPOTENCY_KEY_MISSING'
  static message = 'This request requires an Idempotency-Key header'
}

/**
 * An `Idempotency-Key` reused for a different request while the first
 * one is still in flight
 */
export const E_IDEMPOTENCY_KEY_REUSED = class IdempotencyKeyReusedException extends CodedHttpException {
  static status = 422
  static code = 'E_IDEMPOTENCY_KEY_REUSED'
  static message = 'This Idempotency-Key is in use for a different request payload'
}

/**
 * Renders like the app's exception handler (JSON, JSON:API or HTML by the
 * Accept header), keeping the error code its default JSON rendering drops
 */
function respond(error: CodedHttpException, ctx: HttpContext, meta: Record<string, unknown> = {}) {
  const { request, response } = ctx
  const message = error.publicMessage ?? (error.constructor as typeof Exception).message
  response.status(error.status)
  switch (request.accepts(['html', 'application/vnd.api+json', 'json'])) {
    case 'application/vnd.api+json':
      return response.send({
        errors: [
          {
            code: error.code,
            title: message,
            status: error.status,
            ...(Object.keys(meta).length ? { meta } : {}),
          },
        ],
      })
    case 'json':
      return response.send({ errors: [{ message, code: error.code, ...meta }] })
    default:
      return response.send(`<p> ${escapeHTML(message ?? '')} </p>`)
  }
}

function escapeHTML(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}
