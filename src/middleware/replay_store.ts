import type { HttpContext } from '@adonisjs/core/http'
import { E_INVALID_LOCK_CONFIG, E_LOCK_STORAGE_ERROR } from '../errors.ts'
import { settleWithin } from '../wait.ts'
import type { ReplaySettings } from './settings.ts'

/**
 * The part of `@adonisjs/cache` (bentocache) used here; its types stay
 * out of ours, as the package is an optional peer
 */
interface CacheProvider {
  get(options: { key: string; grace: false; suppressL2Errors: false }): Promise<unknown>
  set(options: {
    key: string
    value: unknown
    ttl: number
    suppressL2Errors: false
  }): Promise<boolean>
}
interface CacheManager {
  use(store?: string): CacheProvider
}

type StoredBody =
  | { kind: 'none' }
  | { kind: 'json'; data: string }
  | { kind: 'text'; data: string }
  | { kind: 'bytes'; data: string }

/**
 * A completed response, kept under the Idempotency-Key with the
 * fingerprint of the request that produced it
 */
export interface StoredResponse {
  fingerprint: string
  status: number
  headers: Record<string, string | string[]>
  body: StoredBody
  etag: boolean
}

const KEY_PREFIX = 'adonis-lock:replay:'

/**
 * Reads and writes replay records in a cache store, each call bounded by
 * `timeout`. A failed read raises E_LOCK_STORAGE_ERROR (the request is
 * refused before its route runs); a failed write is logged, the response
 * goes out.
 */
export class ReplayStore {
  #cache: CacheProvider
  #settings: ReplaySettings
  #timeout: number

  constructor(cache: CacheProvider, settings: ReplaySettings, timeout: number) {
    this.#cache = cache
    this.#settings = settings
    this.#timeout = timeout
  }

  async read(key: string): Promise<StoredResponse | undefined> {
    const value = await this.#bounded(
      this.#cache.get({ key: KEY_PREFIX + key, grace: false, suppressL2Errors: false }),
      'read'
    )
    return isStoredResponse(value) ? value : undefined
  }

  /**
   * Stores the response the route produced, unless it cannot or should
   * not be replayed (the retry then runs the route again)
   */
  async write(ctx: HttpContext, key: string, fingerprint: string): Promise<void> {
    const record = this.#capture(ctx, fingerprint)
    if (typeof record === 'string') {
      ctx.logger.info(
        `adonis-lock: Idempotency-Key response not stored (${record}); a retry runs the route again`
      )
      return
    }
    try {
      await this.#bounded(
        this.#cache.set({
          key: KEY_PREFIX + key,
          value: record,
          ttl: this.#settings.ttl,
          suppressL2Errors: false,
        }),
        'write'
      )
    } catch (error) {
      ctx.logger.error(
        { err: error },
        'adonis-lock: could not store the Idempotency-Key response; a retry runs the route again'
      )
    }
  }

  /**
   * The record of the response, or why there is none
   */
  #capture(ctx: HttpContext, fingerprint: string): StoredResponse | string {
    const { response } = ctx
    if (response.hasStream || response.hasFileToStream) return 'a stream or a file'
    if (response.response.headersSent) return 'written to the socket directly'
    const status = response.getStatus()
    if (status >= 500 && !this.#settings.serverErrors) return `status ${status}`
    const [content, etag = false, jsonpCallback] = response.content ?? [undefined, false]
    if (jsonpCallback) return 'a JSONP response'

    let body: StoredBody
    try {
      body = encodeBody(content)
    } catch {
      return 'a body that does not serialize to JSON'
    }
    const size = body.kind === 'none' ? 0 : Buffer.byteLength(body.data)
    if (size > this.#settings.maxBodySize) {
      return `a body of ${size} bytes, over the ${this.#settings.maxBodySize} bytes limit`
    }

    const headers: StoredResponse['headers'] = {}
    for (const name of this.#settings.headers) {
      const value = response.getHeader(name)
      if (value !== undefined) headers[name] = Array.isArray(value) ? value : String(value)
    }
    return { fingerprint, status, headers, body, etag: Boolean(etag) }
  }

  async #bounded<T>(call: Promise<T>, action: string): Promise<T> {
    let answer: { value: T } | undefined
    try {
      answer = await settleWithin(
        call.then((value) => ({ value })),
        this.#timeout
      )
    } catch (error) {
      throw E_LOCK_STORAGE_ERROR.wrap(error, `replay record ${action}`)
    }
    if (!answer) {
      call.catch(() => {})
      throw new E_LOCK_STORAGE_ERROR(
        `replay record ${action}: the cache did not answer within ${this.#timeout} ms`
      )
    }
    return answer.value
  }
}

/**
 * Sends a stored response as it was, marked as a replay
 */
export function replayResponse(ctx: HttpContext, record: StoredResponse) {
  const { response } = ctx
  response.status(record.status)
  for (const [name, value] of Object.entries(record.headers)) response.header(name, value)
  response.header('Idempotency-Replayed', 'true')
  const { body } = record
  switch (body.kind) {
    case 'json':
      return response.send(JSON.parse(body.data), record.etag)
    case 'text':
      return response.send(body.data, record.etag)
    case 'bytes':
      return response.send(Buffer.from(body.data, 'base64'), record.etag)
  }
}

/**
 * The cache store of the `replay` option, from the app's `cache.manager`.
 * Raises E_INVALID_LOCK_CONFIG when @adonisjs/cache is missing or the
 * store is not one of config/cache.ts.
 */
export async function openReplayStore(
  ctx: HttpContext,
  settings: ReplaySettings,
  timeout: number
): Promise<ReplayStore> {
  const resolver = ctx.containerResolver
  if (!resolver.hasBinding('cache.manager' as never)) {
    throw new E_INVALID_LOCK_CONFIG(
      'The lock middleware "replay" option stores responses with @adonisjs/cache, which is not installed or not registered. Run: node ace add @adonisjs/cache'
    )
  }
  if (settings.store !== undefined) {
    const app = await resolver.make('app')
    const stores = app.config.get('cache.stores', undefined) as Record<string, unknown> | undefined
    if (stores && !Object.hasOwn(stores, settings.store)) {
      const list =
        Object.keys(stores)
          .map((name) => `"${name}"`)
          .join(', ') || 'none'
      throw new E_INVALID_LOCK_CONFIG(
        `Unknown cache store "${settings.store}" in the lock middleware "replay.store" option. Stores of config/cache.ts: ${list}`
      )
    }
  }
  const manager = (await resolver.make('cache.manager' as never)) as CacheManager
  return new ReplayStore(manager.use(settings.store), settings, timeout)
}

/**
 * Objects and arrays go out as JSON, strings as text, buffers as bytes;
 * each is sent back as the same kind, so the response is rendered (and
 * typed) as the first time
 */
function encodeBody(content: unknown): StoredBody {
  if (content === undefined || content === null) return { kind: 'none' }
  if (typeof content === 'string') return { kind: 'text', data: content }
  if (Buffer.isBuffer(content)) return { kind: 'bytes', data: content.toString('base64') }
  const data = JSON.stringify(content)
  if (data === undefined) return { kind: 'none' }
  return { kind: 'json', data }
}

function isStoredResponse(value: unknown): value is StoredResponse {
  if (value === null || typeof value !== 'object') return false
  const record = value as Partial<StoredResponse>
  return (
    typeof record.fingerprint === 'string' &&
    typeof record.status === 'number' &&
    typeof record.headers === 'object' &&
    typeof record.body === 'object'
  )
}
