import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import { E_IDEMPOTENCY_KEY_REUSED, E_LOCK_STORAGE_ERROR } from '../errors.ts'
import { canonicalJson, payloadHash, sha256 } from './fingerprint.ts'
import { release, runRoute, take, type Guard, type Refusal } from './guard.ts'
import { openReplayStore, replayResponse, type ReplayStore } from './replay_store.ts'
import type { Settings } from './settings.ts'

const IN_FLIGHT = 'A request with this Idempotency-Key is still being processed'

/**
 * The cache store of each route's `replay` option, opened at its first
 * request
 */
const replayStores = new WeakMap<Settings, Promise<ReplayStore>>()

/**
 * A request carrying an Idempotency-Key: takes `<key>:<fingerprint>`
 * (held: 409, the same request is in flight), then `<key>` (held: 422,
 * another payload). Why two locks, and the order of replay reads and
 * writes: docs/middleware.md.
 */
export async function guardIdempotent(
  guard: Guard,
  next: NextFn,
  scope: string,
  idempotencyKey: string
): Promise<Refusal | undefined> {
  const { ctx, settings, factory, ttl } = guard
  const key = `idempotency:${scope}:${sha256(idempotencyKey)}`
  const fingerprint = sha256(
    canonicalJson([ctx.request.method(), routePattern(ctx), payloadHash(ctx)])
  )
  const records = settings.replay ? await replayStoreOf(ctx, settings) : undefined
  const recordKey = sha256(key)
  if (records) {
    const outcome = await replayStored(ctx, records, recordKey, fingerprint)
    if (outcome) return outcome === true ? undefined : outcome
  }

  const fingerprintLock = factory.createLock(`${key}:${fingerprint}`, ttl)
  const keyLock = factory.createLock(key, ttl)
  const busy = await take(guard, fingerprintLock, settings.oneTry, IN_FLIGHT)
  if (busy) return busy
  try {
    const reused = await take(guard, keyLock, settings.oneTry, IN_FLIGHT)
    if (reused)
      return reused instanceof E_LOCK_STORAGE_ERROR ? reused : new E_IDEMPOTENCY_KEY_REUSED()
    try {
      if (records) {
        const outcome = await replayStored(ctx, records, recordKey, fingerprint)
        if (outcome) return outcome === true ? undefined : outcome
      }
      await runRoute(guard, next)
      await records?.write(ctx, recordKey, fingerprint)
      return undefined
    } finally {
      await release(guard, keyLock)
    }
  } finally {
    await release(guard, fingerprintLock)
  }
}

/**
 * `true` when a stored response was replayed, a refusal when the key was
 * used for another payload or the cache failed, undefined when nothing
 * is stored yet
 */
async function replayStored(
  ctx: HttpContext,
  records: ReplayStore,
  recordKey: string,
  fingerprint: string
): Promise<true | Refusal | undefined> {
  let record
  try {
    record = await records.read(recordKey)
  } catch (error) {
    if (error instanceof E_LOCK_STORAGE_ERROR) return error
    throw error
  }
  if (!record) return undefined
  if (record.fingerprint !== fingerprint) return new E_IDEMPOTENCY_KEY_REUSED()
  replayResponse(ctx, record)
  return true
}

function replayStoreOf(ctx: HttpContext, settings: Settings): Promise<ReplayStore> {
  let store = replayStores.get(settings)
  if (!store) {
    store = openReplayStore(ctx, settings.replay!, settings.timeout)
    replayStores.set(settings, store)
    store.catch(() => replayStores.delete(settings))
  }
  return store
}

export function routePattern(ctx: HttpContext): string {
  return ctx.route?.pattern ?? ctx.request.url()
}

/**
 * The header is a structured-field string (`"abc"`); plain tokens are
 * accepted too. Empty counts as missing.
 */
export function readIdempotencyKey(ctx: HttpContext): string | null {
  let value = ctx.request.header('idempotency-key')?.trim()
  if (value && value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    value = value.slice(1, -1).replace(/\\(["\\])/g, '$1')
  }
  return value ? value : null
}
