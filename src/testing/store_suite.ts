/**
 * The `assert` of the test context comes from the @japa/assert plugin
 */
import type {} from '@japa/assert'
import type { LockStore } from '../types.ts'
import { registerHandOverConformance } from './hand_over_conformance.ts'
import { registerLockConformance } from './lock_conformance.ts'
import { registerSemaphoreConformance } from './semaphore_conformance.ts'
import { registerSharedConformance } from './shared_conformance.ts'
import { registerWakeConformance } from './wake_conformance.ts'

export { shiftAppClock } from './helpers.ts'

export interface StoreSuiteOptions {
  /**
   * Builds an instance of the store under test. Called for every test, and
   * once more where a test needs a second instance standing for another
   * server: instances built during one test must share their locks, as
   * two servers on one Redis or database do.
   */
  createStore: () => LockStore | Promise<LockStore>
  /**
   * Each instance keeps its own locks, as the memory store does: the
   * checks across instances are skipped (default `false`)
   */
  processLocal?: boolean
  /**
   * The store counts expiry on the process's wall clock (`Date.now()`)
   * rather than on its server's: the checks with the app clock shifted
   * are skipped (default `false`)
   */
  processClock?: boolean
  /**
   * Tears a store down after each test (defaults to `store.close()`)
   */
  closeStore?: (store: LockStore) => unknown
  /**
   * Skips the whole suite (a service that is not there)
   */
  skip?: boolean | string
  /**
   * The store wakes waiters on release rather than making them poll, with
   * `waitForRelease()` (default `true`)
   */
  wakesOnRelease?: boolean
  /**
   * A refused `save()` answers with `retryAfter`, the holder's remaining
   * time, so that waiters retry as soon as it expires (default `true`)
   */
  reportsRetryAfter?: boolean
  /**
   * The store hands out fencing tokens (default `true`)
   */
  fencing?: boolean
  /**
   * The store implements SemaphoreStore (default `true`)
   */
  semaphores?: boolean
  /**
   * The store hands the lock from a release straight to a waiter of its
   * process. Another process's store is a second instance (`createStore`),
   * or what `createPeer` opens on the same keys.
   */
  handsOver?: {
    createPeer?: (store: LockStore) => Promise<{ store: LockStore; close: () => Promise<void> }>
    /**
     * Releases in other processes wake this one's waiters (default), and
     * turns grow while no other process takes the lock. False where other
     * processes' waiters poll: turns then stay short, so that a poll finds
     * the lock free often enough.
     */
    wakesOtherProcesses?: boolean
  }
}

/**
 * Registers the Japa groups every lock store must pass; the built-in
 * stores run them too. For a custom store, in a test file of the app
 * (the `@japa/assert` plugin is needed):
 *
 * ```ts
 * import { registerStoreSuite } from 'adonis-lock/testing'
 *
 * registerStoreSuite('My store', {
 *   // called more than once per test: instances must share their locks
 *   createStore: () => new MyStore({ connection }),
 *   // what the store does not do (each is `true` when omitted)
 *   fencing: false,
 *   reportsRetryAfter: false,
 *   wakesOnRelease: false,
 *   semaphores: false,
 * })
 * ```
 */
export function registerStoreSuite(name: string, options: StoreSuiteOptions) {
  const skip = options.skip
    ? typeof options.skip === 'string'
      ? options.skip
      : `${name} is not available`
    : false
  registerLockConformance(name, options, skip)
  registerSharedConformance(name, options, skip)
  registerWakeConformance(name, options, skip)
  registerHandOverConformance(name, options, skip)
  registerSemaphoreConformance(name, options, skip)
}
