import { configProvider } from '@adonisjs/core'
import type { ApplicationService, ConfigProvider, ContainerBindings } from '@adonisjs/core/types'
import type {} from '@adonisjs/redis/redis_provider'
import type {} from '@adonisjs/lucid/database_provider'
import { E_INVALID_LOCK_CONFIG } from './errors.ts'
import { resolveLockOptions } from './options.ts'
import { MemoryStore } from './stores/memory.ts'
import type { Duration, LockConfig, StoreEntry, StoreFactory } from './types.ts'

/**
 * Validates `config/lock.ts`. Every mistake raises E_INVALID_LOCK_CONFIG
 * naming the field, at boot rather than at the first lock.
 */
export function defineConfig<KnownStores extends Record<string, StoreEntry>>(
  config: LockConfig<KnownStores>
): LockConfig<KnownStores> {
  if (!config || typeof config !== 'object') {
    throw new E_INVALID_LOCK_CONFIG(
      'Invalid lock config: expected an object with "default" and "stores"'
    )
  }
  if (!config.stores || typeof config.stores !== 'object') {
    throw new E_INVALID_LOCK_CONFIG('Missing "stores" property in lock config')
  }
  const names = Object.keys(config.stores)
  if (names.length === 0) {
    throw new E_INVALID_LOCK_CONFIG('The "stores" property of the lock config is empty')
  }
  for (const name of names) {
    const entry = config.stores[name] as unknown
    if (!isStoreEntry(entry)) {
      throw new E_INVALID_LOCK_CONFIG(
        `Invalid "stores.${name}" in lock config: expected stores.redis(), stores.database(), stores.memory() or { driver: { factory } }`
      )
    }
  }
  if (!config.default) {
    throw new E_INVALID_LOCK_CONFIG('Missing "default" store in lock config')
  }
  if (!Object.hasOwn(config.stores, config.default)) {
    throw new E_INVALID_LOCK_CONFIG(
      `The "default" store "${String(config.default)}" is not among the configured "stores" (${names.join(', ')})`
    )
  }
  resolveLockOptions(config)
  return config
}

function isStoreEntry(entry: unknown): entry is StoreEntry {
  if (!entry || typeof entry !== 'object') return false
  if ('resolver' in entry) return typeof entry.resolver === 'function'
  return 'driver' in entry && typeof (entry as StoreFactory).driver?.factory === 'function'
}

export interface RedisStoreConfig {
  /**
   * Connection of `config/redis.ts`; its default connection when omitted
   */
  connectionName?: string
  /**
   * Hand out fencing tokens (default `true`). `false` makes acquire a
   * bare `SET NX PX`, faster, and `fencingToken` null.
   */
  fencing?: boolean
}

export interface DatabaseStoreConfig {
  /**
   * Connection of `config/database.ts`; its default connection when omitted
   */
  connectionName?: string
  /**
   * Table created by the configure hook's migration, `locks` by default
   */
  tableName?: string
  /**
   * At most this often (`'60s'` by default), a successful acquire also
   * prunes a few expired rows. `false`: only `node ace lock:prune` does
   */
  pruneInterval?: Duration | false
  /**
   * Prepared statements (`true` by default). `false` behind a pooler that
   * cannot keep them (PgBouncer in transaction mode)
   */
  preparedStatements?: boolean
}

/**
 * The built-in stores, for `config/lock.ts`. Each resolves its backend
 * from the app container only when the config is read, and builds the
 * store only when it is first used.
 */
export const stores: {
  memory: () => ConfigProvider<StoreFactory>
  redis: (config?: RedisStoreConfig) => ConfigProvider<StoreFactory>
  database: (config?: DatabaseStoreConfig) => ConfigProvider<StoreFactory>
} = {
  memory() {
    return configProvider.create(async () => ({
      driver: { factory: () => new MemoryStore() },
    }))
  },

  redis(config = {}) {
    return configProvider.create(async (app) => {
      const redis = await makeBackend(app, 'redis', '@adonisjs/redis')
      const { RedisStore } = await import('./stores/redis/redis_store.ts')
      return {
        driver: {
          factory: () =>
            new RedisStore({
              connection: redis.connection(config.connectionName).ioConnection,
              fencing: config.fencing,
            }),
        },
      }
    })
  },

  database(config = {}) {
    return configProvider.create(async (app) => {
      const db = await makeBackend(app, 'lucid.db', '@adonisjs/lucid')
      const connectionName = config.connectionName ?? db.primaryConnectionName
      if (!db.manager.has(connectionName)) {
        throw new E_INVALID_LOCK_CONFIG(
          `Unknown database connection "${connectionName}" in config/lock.ts. Define it in config/database.ts first`
        )
      }
      const { DatabaseStore } = await import('./stores/database/database_store.ts')
      return {
        driver: {
          factory: () =>
            new DatabaseStore({
              connection: db.connection(connectionName).getWriteClient(),
              tableName: config.tableName,
              pruneInterval: config.pruneInterval,
              preparedStatements: config.preparedStatements,
            }),
        },
      }
    })
  },
}

/**
 * The backend binding of a store. The container's own error does not say
 * that a package or provider is missing, which is the usual reason
 */
async function makeBackend<Binding extends 'redis' | 'lucid.db'>(
  app: ApplicationService,
  binding: Binding,
  packageName: string
): Promise<ContainerBindings[Binding]> {
  try {
    return (await app.container.make(binding)) as ContainerBindings[Binding]
  } catch (error) {
    if (app.container.hasBinding(binding)) throw error
    throw new E_INVALID_LOCK_CONFIG(
      `Cannot resolve binding "${binding}" from the container: is ${packageName} installed and its provider registered in adonisrc.ts?`,
      { cause: error }
    )
  }
}
