import { Redis } from 'ioredis'
import { DatabaseStore, MemoryStore, RedisStore } from '../../src/stores/main.ts'
import type { LockStore } from '../../src/types.ts'
import {
  DIALECT_LABELS,
  dialectAvailable,
  openTestDatabase,
  type TestDialect,
} from './databases.ts'
import { SERVICES, serviceAvailable, uniqueKey } from './services.ts'

/**
 * A store on a real backend, with `fresh()` for one more store of the same
 * process on the same backend (its own waiting line)
 */
export interface RealStore {
  store: LockStore
  prefix: string
  fresh(): LockStore
  close(): Promise<void>
}

export interface RealStoreKind {
  name: string
  available(): Promise<boolean>
  open(): Promise<RealStore>
}

function databaseKind(dialect: TestDialect): RealStoreKind {
  return {
    name: DIALECT_LABELS[dialect],
    available: () => dialectAvailable(dialect),
    async open() {
      const database = await openTestDatabase(dialect)
      const made: DatabaseStore[] = []
      const fresh = () => {
        const store = new DatabaseStore({
          connection: database.client,
          tableName: database.tableName,
        })
        made.push(store)
        return store
      }
      return {
        store: fresh(),
        prefix: uniqueKey('hardening'),
        fresh,
        async close() {
          for (const store of made) await store.close()
          await database.close()
        },
      }
    },
  }
}

/**
 * Memory, Redis, PostgreSQL, MariaDB and SQLite
 */
export const REAL_STORES: RealStoreKind[] = [
  {
    name: 'memory',
    available: async () => true,
    async open() {
      const store = new MemoryStore()
      return { store, prefix: uniqueKey('hardening'), fresh: () => store, close: async () => {} }
    },
  },
  {
    name: 'Redis',
    available: () => serviceAvailable('redis'),
    async open() {
      const connections: Redis[] = []
      const made: RedisStore[] = []
      const fresh = () => {
        const connection = new Redis(SERVICES.redis)
        connections.push(connection)
        const store = new RedisStore({ connection })
        made.push(store)
        return store
      }
      return {
        store: fresh(),
        prefix: uniqueKey('hardening'),
        fresh,
        async close() {
          for (const store of made) await store.close()
          for (const connection of connections) await connection.quit()
        },
      }
    },
  },
  databaseKind('postgres'),
  databaseKind('mysql'),
  databaseKind('sqlite'),
]
