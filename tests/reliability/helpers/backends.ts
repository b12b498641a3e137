/**
 * The stores the reliability tests run on, described by JSON-safe specs so
 * worker processes open exactly what the test opened
 */
import { Redis, type RedisOptions } from 'ioredis'
import knex, { type Knex } from 'knex'
import { DatabaseStore } from '../../../src/stores/database/database_store.ts'
import { MemoryStore } from '../../../src/stores/memory.ts'
import { RedisStore } from '../../../src/stores/redis/redis_store.ts'
import type { LockStore } from '../../../src/types.ts'

export type BackendSpec =
  | { kind: 'memory' }
  | { kind: 'redis'; port: number; options?: RedisOptions }
  | {
      kind: 'database'
      config: Knex.Config & { client: string; connection: Record<string, unknown> }
      tableName: string
    }

export interface OpenBackend {
  store: LockStore
  redis?: Redis
  knex?: Knex
  close(): Promise<void>
}

const noop = () => {}

/**
 * Opens the store of a spec, with its own connection. `close()` closes the
 * store and then the connection.
 */
export function openBackend(spec: BackendSpec): OpenBackend {
  if (spec.kind === 'memory') {
    const store = new MemoryStore()
    return { store, close: () => store.close() }
  }
  if (spec.kind === 'redis') {
    const redis = new Redis({ host: '127.0.0.1', port: spec.port, ...spec.options })
    /**
     * Fault tests take the server away: errors reach the callers through
     * the commands, the connection itself must not crash the process
     */
    redis.on('error', noop)
    const store = new RedisStore({ connection: redis })
    return {
      store,
      redis,
      async close() {
        await store.close()
        redis.disconnect()
      },
    }
  }
  /**
   * The fault tests break connections on purpose: the callers see every
   * failure, knex need not print them
   */
  const connection = knex.knex({
    pool: { min: 0, max: 4 },
    log: { warn: noop, error: noop, deprecate: noop, debug: noop },
    ...spec.config,
  })
  const store = new DatabaseStore({ connection, tableName: spec.tableName })
  return {
    store,
    knex: connection,
    async close() {
      try {
        await store.close()
      } finally {
        await connection.destroy()
      }
    },
  }
}
