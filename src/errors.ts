import { Exception } from '@adonisjs/core/exceptions'

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
 * Raised only by helpers that must throw when a lock cannot be taken in time
 */
export const E_LOCK_TIMEOUT = class LockTimeoutException extends Exception {
  static status = 409
  static code = 'E_LOCK_TIMEOUT'
  static message = 'Timed out while waiting for the lock'
}

/**
 * Every backend failure, with the original error as `cause`
 */
export const E_LOCK_STORAGE_ERROR = class LockStorageErrorException extends Exception {
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

  constructor(value: unknown, field = 'duration') {
    super(
      `Invalid ${field} ${describe(value)}. Use a number of ms, or a string like "250ms", "10s", "2m"`
    )
  }
}

export const E_INVALID_LOCK_CONFIG = class InvalidLockConfigException extends Exception {
  static status = 500
  static code = 'E_INVALID_LOCK_CONFIG'
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'bigint') return String(value)
  if (value === undefined) return 'undefined'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}

/**
 * `restoreLock()` given something else than `lock.serialize()` output
 */
export const E_INVALID_SERIALIZED_LOCK = class InvalidSerializedLockException extends Exception {
  static status = 500
  static code = 'E_INVALID_SERIALIZED_LOCK'
}
