import { E_INVALID_LOCK_CONFIG, E_UNKNOWN_LOCK_STORE } from './errors.ts'
import type { Lock } from './lock.ts'
import type { Semaphore } from './semaphore.ts'
import { LockFactory } from './lock_factory.ts'
import { resolveLockOptions } from './options.ts'
import type {
  Duration,
  LockConfig,
  LockEventEmitter,
  LockLogger,
  LockStore,
  ResolvedLockOptions,
  SerializedLock,
  StoreFactory,
} from './types.ts'

/**
 * The lock config once its stores are resolved to factories
 */
export type LockManagerConfig<KnownStores extends Record<string, StoreFactory>> =
  LockConfig<KnownStores>

/**
 * The `locks` service: stores by name, created on first use and kept
 */
export class LockManager<
  KnownStores extends Record<string, StoreFactory> = Record<string, StoreFactory>,
> {
  #config: LockManagerConfig<KnownStores>
  #defaults: ResolvedLockOptions
  #factories = new Map<keyof KnownStores, LockFactory>()

  constructor(
    config: LockManagerConfig<KnownStores>,
    dependencies: { emitter?: LockEventEmitter; logger?: LockLogger } = {}
  ) {
    if (
      !config ||
      typeof config !== 'object' ||
      !config.stores ||
      typeof config.stores !== 'object'
    ) {
      throw new E_INVALID_LOCK_CONFIG(
        'Invalid lock config: expected an object with "default" and "stores" (see defineConfig)'
      )
    }
    this.#config = config
    this.#defaults = resolveLockOptions({ ...config, ...dependencies })
  }

  get defaultStoreName(): keyof KnownStores {
    return this.#config.default
  }

  get storeNames(): Array<keyof KnownStores> {
    return Object.keys(this.#config.stores)
  }

  /**
   * The lock factory of a store; the store is created on first use
   */
  use<StoreName extends keyof KnownStores>(name?: StoreName): LockFactory {
    const storeName = name ?? this.#config.default
    const cached = this.#factories.get(storeName)
    if (cached) return cached

    const entry = Object.hasOwn(this.#config.stores, storeName)
      ? this.#config.stores[storeName]
      : undefined
    if (!entry) throw new E_UNKNOWN_LOCK_STORE(storeName, Object.keys(this.#config.stores))
    const store = createStore(String(storeName), entry)
    const factory = new LockFactory(store, { ...this.#defaults, storeName: String(storeName) })
    this.#factories.set(storeName, factory)
    return factory
  }

  createLock(key: string, ttl?: Duration | null): Lock {
    return this.use().createLock(key, ttl)
  }

  /**
   * A semaphore on the default store: up to `limit` owners at once
   */
  createSemaphore(key: string, limit: number, ttl?: Duration | null): Semaphore {
    return this.use().createSemaphore(key, limit, ttl)
  }

  /**
   * Restores on the store recorded in the serialized lock
   */
  restoreLock(serialized: SerializedLock): Lock {
    const storeName = serialized && typeof serialized === 'object' ? serialized.store : undefined
    return this.use(storeName ?? this.#config.default).restoreLock(serialized)
  }

  /**
   * Closes the stores created so far
   */
  async close(): Promise<void> {
    const factories = [...this.#factories.values()]
    this.#factories.clear()
    await Promise.all(factories.map((factory) => factory.store.close?.()))
  }
}

/**
 * Checked on use rather than in the constructor, so that one bad entry
 * does not take down the stores that work
 */
function createStore(name: string, entry: unknown): LockStore {
  const factory = (entry as Partial<StoreFactory>).driver?.factory
  if (typeof factory === 'function') return factory(name)

  if (typeof (entry as { resolver?: unknown }).resolver === 'function') {
    throw new E_INVALID_LOCK_CONFIG(
      `The "${name}" lock store is a config provider (stores.redis(), stores.database() or stores.memory() of defineConfig), which only the lock provider of an AdonisJS app resolves. Outside an app, pass { driver: { factory: () => store } } with a store of "adonis-lock/stores"`
    )
  }
  throw new E_INVALID_LOCK_CONFIG(
    `Invalid lock store "${name}": expected { driver: { factory: (name) => store } }`
  )
}
