import { E_INVALID_LOCK_CONFIG, E_LOCK_LOST, E_LOCK_NOT_OWNED } from './errors.ts'
import { checkAcquireOptions } from './options.ts'
import type { LockAcquireOptions, LockRunContext, LockRunOptions } from './types.ts'
import type { Watchdog } from './watchdog.ts'

type Callback<T> = (context: LockRunContext) => T | Promise<T>

/**
 * The lock a callback runs under, through its public API
 */
export interface RunLock {
  readonly key: string
  readonly fencingToken: number | null
  getOwner(): string
  isExpired(): boolean
  acquire(options?: LockAcquireOptions): Promise<boolean>
  release(): Promise<void>
}

/**
 * What a run needs of its lock beyond the public API
 */
export interface RunEnd {
  /**
   * The number of the lock's current acquisition: a newer one has another
   */
  acquisition(): number
  /**
   * The watchdog of the lock's current acquisition, if `autoExtend` started one
   */
  watchdog(): Watchdog | undefined
  /**
   * Frees `owner` in the store if it still holds the key there; an error
   * is ignored (the lock expires after its ttl)
   */
  releaseQuietly(owner: string): void
  lost(reason: string): void
  releaseFailed(error: unknown): void
}

/**
 * `lock.run()`: acquires, runs the callback and releases in `finally`
 */
export async function run<T>(
  lock: RunLock,
  end: RunEnd,
  callback: Callback<T>,
  options?: LockRunOptions
): Promise<[true, T] | [false, null]> {
  assertCallback(callback)
  if (!(await lock.acquire(options))) return [false, null]
  return runHeld(lock, end, callback)
}

/**
 * `lock.runImmediately()`: the same with a single try
 */
export async function runImmediately<T>(
  lock: RunLock,
  end: RunEnd,
  callback: Callback<T>,
  options?: Pick<LockRunOptions, 'autoExtend'>
): Promise<[true, T] | [false, null]> {
  assertCallback(callback)
  const { autoExtend } = checkAcquireOptions(options)
  if (!(await lock.acquire({ retry: { attempts: 1 }, autoExtend }))) return [false, null]
  return runHeld(lock, end, callback)
}

/**
 * Runs the callback under the lock just acquired, then releases it
 */
async function runHeld<T>(lock: RunLock, end: RunEnd, callback: Callback<T>): Promise<[true, T]> {
  /**
   * This run's own acquisition. A newer acquisition of the same object,
   * while the callback runs, begins once this one ended (expired or was
   * released): from then on the object's state speaks for the newer one
   */
  const acquisition = end.acquisition()
  const superseded = () => end.acquisition() !== acquisition
  const watchdog = end.watchdog()
  const signal = watchdog?.signal ?? new AbortController().signal
  const owner = lock.getOwner()
  const throwIfLost = () => {
    if (!signal.aborted && (superseded() || lock.isExpired())) {
      throw new E_LOCK_LOST(`Lock "${lock.key}" was lost: its ttl ran out`)
    }
    signal.throwIfAborted()
  }
  try {
    const result = await callback({ signal, fencingToken: lock.fencingToken, throwIfLost })
    return [true, result]
  } finally {
    watchdog?.stop()
    if (superseded()) {
      /**
       * A newer acquisition holds the lock now. As the same owner, it took
       * the lock after this one ended; as another, this run may still hold
       * a semaphore slot
       */
      if (owner !== lock.getOwner()) end.releaseQuietly(owner)
    } else if (signal.aborted) {
      /**
       * The watchdog gave the lock up, but the store may hold it still (an
       * extension answered too late): free it if this acquisition has it
       */
      end.releaseQuietly(owner)
    } else {
      await releaseAfterRun(lock, end)
    }
  }
}

/**
 * A failed release must not throw away the callback's result (or
 * replace its error): it is reported instead
 */
async function releaseAfterRun(lock: RunLock, end: RunEnd): Promise<void> {
  try {
    await lock.release()
  } catch (error) {
    if (error instanceof E_LOCK_NOT_OWNED) {
      end.lost('the lock expired or was taken over before release')
    } else {
      end.releaseFailed(error)
    }
  }
}

function assertCallback(callback: unknown) {
  if (typeof callback !== 'function') {
    throw new E_INVALID_LOCK_CONFIG('run() and runImmediately() expect a callback function')
  }
}
