import { describe } from './describe.ts'
import { parseTtl } from './duration.ts'
import { E_INVALID_LOCK_CONFIG, E_INVALID_LOCK_KEY, E_INVALID_SERIALIZED_LOCK } from './errors.ts'
import { Lock } from './lock.ts'
import { resolveLockOptions } from './options.ts'
import { Semaphore } from './semaphore.ts'
import type {
  Duration,
  LockFactoryOptions,
  LockStore,
  ResolvedLockOptions,
  SerializedLock,
} from './types.ts'

const MAX_KEY_BYTES = 1024

/**
 * Creates locks on one store, with the defaults of one config
 */
export class LockFactory {
  readonly store: LockStore
  #options: ResolvedLockOptions

  constructor(store: LockStore, options: LockFactoryOptions = {}) {
    this.#options = resolveLockOptions(options)
    assertLockStore(store, this.#options.storeName)
    this.store = store
  }

  get options(): Readonly<ResolvedLockOptions> {
    return this.#options
  }

  /**
   * A lock on `key`, expiring after `ttl` (the configured default when
   * omitted, `null` for no expiry)
   */
  createLock(key: string, ttl?: Duration | null): Lock {
    validateKey(key)
    return new Lock(
      key,
      this.store,
      this.#options,
      ttl === undefined ? this.#options.ttl : parseTtl(ttl)
    )
  }

  /**
   * A semaphore on `key`: up to `limit` owners hold it at once
   */
  createSemaphore(key: string, limit: number, ttl?: Duration | null): Semaphore {
    validateKey(key)
    return new Semaphore(
      key,
      this.store,
      this.#options,
      ttl === undefined ? this.#options.ttl : parseTtl(ttl),
      limit
    )
  }

  /**
   * A lock from `lock.serialize()`, possibly made in another process:
   * same key, same owner
   */
  restoreLock(serialized: SerializedLock): Lock {
    assertSerializedLock(serialized)
    validateKey(serialized.key)
    const restored = {
      owner: serialized.owner,
      expirationTime: serialized.expirationTime,
      fencingToken: serialized.fencingToken ?? null,
    }
    if (serialized.limit !== undefined) {
      return new Semaphore(
        serialized.key,
        this.store,
        this.#options,
        serialized.ttl,
        serialized.limit,
        restored
      )
    }
    return new Lock(serialized.key, this.store, this.#options, serialized.ttl, restored)
  }
}

function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new E_INVALID_LOCK_KEY(`Invalid lock key ${describe(key)}: expected a non-empty string`)
  }
  /**
   * Stores keep keys as UTF-8, where every lone surrogate becomes the same
   * replacement character: distinct keys would share one lock
   */
  if (!key.isWellFormed()) {
    throw new E_INVALID_LOCK_KEY(
      `Invalid lock key ${describe(key)}: it holds a lone UTF-16 surrogate, which stores cannot keep apart`
    )
  }
  /**
   * PostgreSQL text cannot hold it: refused everywhere, so that a key
   * working on one store works on all
   */
  if (key.includes('\u0000')) {
    throw new E_INVALID_LOCK_KEY(`Invalid lock key ${describe(key)}: it holds a NUL character`)
  }
  /**
   * A UTF-16 unit takes at most 3 bytes of UTF-8: short keys need no count
   */
  if (key.length * 3 <= MAX_KEY_BYTES) return
  const bytes = Buffer.byteLength(key)
  if (bytes > MAX_KEY_BYTES) {
    throw new E_INVALID_LOCK_KEY(
      `Lock key is ${bytes} bytes long; at most ${MAX_KEY_BYTES} bytes are allowed`
    )
  }
}

/**
 * Owners holding a NUL are refused: PostgreSQL text cannot hold one, and
 * the Redis store marks a lock waited for with one (WAITED_MARK)
 */
function assertSerializedLock(value: unknown): asserts value is SerializedLock {
  const problem = serializedLockProblem(value as Record<string, unknown> | null)
  if (problem) throw new E_INVALID_SERIALIZED_LOCK(`Cannot restore lock: ${problem}`)
}

function serializedLockProblem(lock: Record<string, unknown> | null): string | null {
  if (typeof lock !== 'object' || lock === null) {
    return 'expected the object returned by lock.serialize()'
  }
  if (typeof lock.owner !== 'string' || lock.owner.length === 0) {
    return '"owner" must be a non-empty string'
  }
  if (lock.owner.includes('\u0000')) return '"owner" must not hold a NUL character'
  if (!isMsOrNull(lock.ttl) || (lock.ttl !== null && !isDuration(lock.ttl))) {
    return '"ttl" must be a number of ms or null'
  }
  if (!isMsOrNull(lock.expirationTime)) return '"expirationTime" must be a timestamp or null'
  const token = lock.fencingToken
  if (token !== undefined && token !== null && !Number.isSafeInteger(token)) {
    return '"fencingToken" must be an integer or null'
  }
  return null
}

/**
 * A store must accept the lock's methods, else the first acquire would
 * fail with a TypeError of the store's
 */
function assertLockStore(store: unknown, storeName: string): asserts store is LockStore {
  const methods = ['save', 'delete', 'forceDelete', 'exists', 'extend'] as const
  const candidate = store as Record<string, unknown> | null
  const missing =
    typeof candidate === 'object' && candidate !== null
      ? methods.filter((method) => typeof candidate[method] !== 'function')
      : methods
  if (missing.length) {
    throw new E_INVALID_LOCK_CONFIG(
      `The "${storeName}" lock store is not a LockStore: ${describe(store)} lacks ${missing.join(', ')}`
    )
  }
}

/**
 * A ttl the lock can sleep on (the watchdog times ttl/3)
 */
function isDuration(value: unknown) {
  try {
    return parseTtl(value) !== null
  } catch {
    return false
  }
}

function isMsOrNull(value: unknown) {
  return value === null || (typeof value === 'number' && Number.isFinite(value) && value >= 0)
}
