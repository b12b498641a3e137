import { listenerCheck } from './listened_events.ts'
import { describe } from './describe.ts'
import { parseDuration, parseRequiredDuration, parseTtl } from './duration.ts'
import { E_INVALID_DURATION, E_INVALID_LOCK_CONFIG } from './errors.ts'
import type {
  LockAcquireOptions,
  LockFactoryOptions,
  ResolvedLockOptions,
  ResolvedRetryOptions,
  RetryOptions,
} from './types.ts'

export const DEFAULT_TTL = 30_000
const DEFAULT_PREFIX = 'lock'
export const DEFAULT_RETRY: ResolvedRetryOptions = { attempts: null, delay: 250, timeout: null }

/**
 * Merges retry options over a base, validating each field
 */
export function resolveRetry(
  retry: RetryOptions | undefined,
  base: ResolvedRetryOptions = DEFAULT_RETRY,
  field = 'retry'
): ResolvedRetryOptions {
  if (retry === undefined) return base
  if (retry === null || typeof retry !== 'object') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid "${field}": expected an object with attempts, delay, timeout`
    )
  }
  const attempts = retry.attempts === undefined ? base.attempts : retry.attempts
  if (attempts !== null && (!Number.isInteger(attempts) || attempts < 0)) {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid "${field}.attempts" ${describe(attempts)}: expected a non-negative integer or null`
    )
  }
  return {
    attempts,
    delay:
      retry.delay === undefined ? base.delay : parseRequiredDuration(retry.delay, `${field}.delay`),
    timeout:
      retry.timeout === undefined ? base.timeout : parseDuration(retry.timeout, `${field}.timeout`),
  }
}

/**
 * Validates factory/config level defaults. Bad values raise
 * E_INVALID_LOCK_CONFIG naming the field.
 */
export function resolveLockOptions(options: LockFactoryOptions | null = {}): ResolvedLockOptions {
  options ??= {}
  if (typeof options !== 'object') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid lock options ${describe(options)}: expected an object with ttl, retry, prefix`
    )
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') {
    throw new E_INVALID_LOCK_CONFIG(`Invalid "prefix" ${describe(prefix)}: expected a string`)
  }
  if (options.storeName !== undefined && typeof options.storeName !== 'string') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid "storeName" ${describe(options.storeName)}: expected a string`
    )
  }
  if (options.telemetry !== undefined && typeof options.telemetry !== 'boolean') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid "telemetry" ${describe(options.telemetry)}: expected true or false`
    )
  }
  return {
    ttl: asConfigError(() => (options.ttl === undefined ? DEFAULT_TTL : parseTtl(options.ttl))),
    retry: asConfigError(() => resolveRetry(options.retry)),
    prefix,
    storeName: options.storeName ?? 'default',
    emitter: options.emitter,
    listened: options.emitter ? listenerCheck(options.emitter) : undefined,
    logger: options.logger,
    telemetry: options.telemetry ?? true,
  }
}

/**
 * Validates the options of `acquire()` and `run()`; null is no options
 */
export function checkAcquireOptions(
  options: LockAcquireOptions | null | undefined
): LockAcquireOptions {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid acquire options ${describe(options)}: expected an object with retry, signal, autoExtend`
    )
  }
  const signal = options.signal as Partial<AbortSignal> | null | undefined
  if (
    signal !== undefined &&
    signal !== null &&
    (typeof signal !== 'object' ||
      typeof signal.throwIfAborted !== 'function' ||
      typeof signal.addEventListener !== 'function')
  ) {
    throw new E_INVALID_LOCK_CONFIG(`Invalid "signal" ${describe(signal)}: expected an AbortSignal`)
  }
  return options
}

function asConfigError<T>(resolve: () => T): T {
  try {
    return resolve()
  } catch (error) {
    if (error instanceof E_INVALID_DURATION) {
      throw new E_INVALID_LOCK_CONFIG(`Invalid lock config: ${error.message}`, { cause: error })
    }
    throw error
  }
}
