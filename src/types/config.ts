import type { ConfigProvider } from '@adonisjs/core/types'
import type { LockManager } from '../lock_manager.ts'
import type { Duration, RetryOptions } from './locks.ts'
import type { StoreEntry, StoreFactory } from './stores.ts'

/**
 * The lock config (`config/lock.ts`), as `defineConfig()` takes it
 */
export interface LockConfig<KnownStores extends Record<string, StoreEntry>> {
  default: keyof KnownStores
  stores: KnownStores
  ttl?: Duration | null
  prefix?: string
  retry?: RetryOptions
  /**
   * `false` turns off the OpenTelemetry spans and metrics of these locks
   */
  telemetry?: boolean
}

/**
 * Stores configured in the app, inferred by `InferLockStores`
 */
export interface LockStoresList {}

export type InferLockStores<T extends { stores: Record<string, StoreEntry> }> = {
  [K in keyof T['stores']]: T['stores'][K] extends ConfigProvider<infer A> ? A : T['stores'][K]
}

/**
 * The `locks` service
 */
export interface LockService extends LockManager<
  LockStoresList extends Record<string, StoreFactory>
    ? LockStoresList
    : Record<string, StoreFactory>
> {}
