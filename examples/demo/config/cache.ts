import { defineConfig, drivers, store } from '@adonisjs/cache'
import type { CacheOptions } from '@adonisjs/cache/types'

/**
 * Where the lock middleware keeps the responses it replays: a table of
 * the SQLite file both servers share
 */
const cacheConfig: CacheOptions & { default: string; stores: Record<string, unknown> } =
  defineConfig({
    default: 'shared',
    stores: {
      shared: store().useL2Layer(
        drivers.database({ connectionName: 'sqlite', tableName: 'cache', autoCreateTable: false })
      ),
    },
  })

export default cacheConfig
