import { parseRequiredDuration, parseRequiredTtl } from '../duration.ts'
import { E_INVALID_DURATION, E_INVALID_LOCK_CONFIG } from '../errors.ts'
import type { LockMiddlewareOptions, RetryOptions } from '../types.ts'
import { RecentDurations } from './retry_after.ts'

/**
 * Headers that describe a response, replayed with it. Never `Set-Cookie`
 * or `Date`: they belong to the exchange, not to the result.
 */
const REPLAYED_HEADERS = [
  'cache-control',
  'content-disposition',
  'content-language',
  'content-location',
  'content-type',
  'etag',
  'expires',
  'last-modified',
  'link',
  'location',
  'vary',
]
const NEVER_REPLAYED = new Set(['set-cookie', 'date', 'content-length', 'transfer-encoding'])

const DEFAULT_STORE_TIMEOUT = 3000
const DEFAULT_REPLAY_TTL = 24 * 3_600_000
const DEFAULT_MAX_BODY_SIZE = 1024 * 1024

export interface ReplaySettings {
  store: string | undefined
  ttl: number
  serverErrors: boolean
  maxBodySize: number
  headers: string[]
}

export interface Settings {
  ttl: number | undefined
  /**
   * The acquire of the duplicate guard: one try bounded by `timeout`, or
   * waiting up to `wait`
   */
  retry: RetryOptions
  /**
   * The acquires of the Idempotency-Key locks: one try, never waiting
   */
  oneTry: RetryOptions
  timeout: number
  scope: 'request' | 'user'
  key: LockMiddlewareOptions['key']
  store: string | undefined
  idempotency: 'required' | 'optional' | undefined
  replay: ReplaySettings | undefined
  durations: RecentDurations
}

/**
 * Route options objects are created once, when the routes are defined
 */
const resolved = new WeakMap<LockMiddlewareOptions, Settings>()

export function resolveSettings(options: LockMiddlewareOptions): Settings {
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
  const timeout =
    options.timeout === undefined ? DEFAULT_STORE_TIMEOUT : ttl(options.timeout, 'timeout')
  const wait = options.wait === undefined ? 0 : duration(options.wait, 'wait')
  const oneTry = { attempts: 1, timeout }
  settings = {
    ttl: options.ttl === undefined ? undefined : ttl(options.ttl, 'ttl'),
    retry: wait > 0 ? { attempts: null, timeout: wait } : oneTry,
    oneTry,
    timeout,
    scope,
    key,
    store,
    idempotency,
    replay: resolveReplay(options),
    durations: new RecentDurations(),
  }
  resolved.set(options, settings)
  return settings
}

function resolveReplay(options: LockMiddlewareOptions): ReplaySettings | undefined {
  const { replay } = options
  if (replay === undefined || (replay as unknown) === false) return undefined
  if (!options.idempotency) {
    throw new E_INVALID_LOCK_CONFIG(
      'Invalid lock middleware "replay": it replays Idempotency-Key requests, set "idempotency" too'
    )
  }
  if (replay !== true && (replay === null || typeof replay !== 'object')) {
    throw new E_INVALID_LOCK_CONFIG(
      'Invalid lock middleware "replay": expected true or an object { store, ttl, ... }'
    )
  }
  const {
    store,
    ttl: ttlOption,
    serverErrors = false,
    maxBodySize,
    headers = [],
  } = replay === true ? {} : replay
  if (store !== undefined && (typeof store !== 'string' || store === '')) {
    throw new E_INVALID_LOCK_CONFIG(
      'Invalid lock middleware "replay.store": expected a store name of config/cache.ts'
    )
  }
  if (typeof serverErrors !== 'boolean') {
    throw new E_INVALID_LOCK_CONFIG(
      'Invalid lock middleware "replay.serverErrors": expected a boolean'
    )
  }
  if (maxBodySize !== undefined && !(Number.isSafeInteger(maxBodySize) && maxBodySize >= 0)) {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid lock middleware "replay.maxBodySize" ${JSON.stringify(maxBodySize)}: expected a number of bytes`
    )
  }
  if (!Array.isArray(headers) || !headers.every((name) => typeof name === 'string' && name)) {
    throw new E_INVALID_LOCK_CONFIG(
      'Invalid lock middleware "replay.headers": expected header names'
    )
  }
  const extra = headers.map((name) => name.toLowerCase())
  const refused = extra.find((name) => NEVER_REPLAYED.has(name))
  if (refused) {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid lock middleware "replay.headers": "${refused}" is never replayed`
    )
  }
  return {
    store,
    ttl: ttlOption === undefined ? DEFAULT_REPLAY_TTL : ttl(ttlOption, 'replay.ttl'),
    serverErrors,
    maxBodySize: maxBodySize ?? DEFAULT_MAX_BODY_SIZE,
    headers: [...new Set([...REPLAYED_HEADERS, ...extra])],
  }
}

function ttl(value: unknown, field: string): number {
  return parse(() => parseRequiredTtl(value, field))
}

function duration(value: unknown, field: string): number {
  return parse(() => parseRequiredDuration(value, field))
}

function parse(parser: () => number): number {
  try {
    return parser()
  } catch (error) {
    if (!(error instanceof E_INVALID_DURATION)) throw error
    throw new E_INVALID_LOCK_CONFIG(`Invalid lock middleware option: ${error.message}`, {
      cause: error,
    })
  }
}
