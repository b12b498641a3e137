import { parseDuration } from './duration.ts'
import { E_INVALID_LOCK_KEY, E_INVALID_SERIALIZED_LOCK } from './errors.ts'
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
    this.store = store
    this.#options = resolveLockOptions(options)
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
      ttl === undefined ? this.#options.ttl : parseDuration(ttl, 'ttl')
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
      ttl === undefined ? this.#options.ttl : parseDuration(ttl, 'ttl'),
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

export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new E_INVALID_LOCK_KEY(
      `Invalid lock key ${JSON.stringify(key) ?? String(key)}: expected a non-empty string`
    )
  }
  const bytes = Buffer.byteLength(key)
  if (bytes > MAX_KEY_BYTES) {
    throw new E_INVALID_LOCK_KEY(
      `Lock key is ${bytes} bytes long; at most ${MAX_KEY_BYTES} bytes are allowed`
    )
  }
}

function assertSerializedLock(value: unknown): asserts value is SerializedLock {
  const lock = value as Record<string, unknown> | null
  const problem =
    typeof lock !== 'object' || lock === null
      ? 'expected the object returned by lock.serialize()'
      : typeof lock.owner !== 'string' || lock.owner.length === 0
        ? '"owner" must be a non-empty string'
        : !isMsOrNull(lock.ttl)
          ? '"ttl" must be a number of ms or null'
          : !isMsOrNull(lock.expirationTime)
            ? '"expirationTime" must be a timestamp or null'
            : lock.fencingToken !== undefined &&
                lock.fencingToken !== null &&
                !Number.isSafeInteger(lock.fencingToken)
              ? '"fencingToken" must be an integer or null'
              : null
  if (problem) throw new E_INVALID_SERIALIZED_LOCK(`Cannot restore lock: ${problem}`)
}

function isMsOrNull(value: unknown) {
  return value === null || (typeof value === 'number' && Number.isFinite(value) && value >= 0)
}
