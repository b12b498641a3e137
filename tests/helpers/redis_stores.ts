import type { Cluster, Redis } from 'ioredis'
import { RedisStore, type RedisStoreOptions } from '../../src/stores/main.ts'
import type { LockStore } from '../../src/types.ts'

/**
 * `createStore` / `closeStore` / `handsOver` of the conformance suite for Redis stores,
 * each on a client of its own, closed with the store after `clear` (which
 * deletes what the store left on a shared server)
 */
export function redisSuiteStores<Connection extends Redis | Cluster>(
  connect: () => Connection | Promise<Connection>,
  options: Omit<RedisStoreOptions, 'connection'> = {},
  clear?: (connection: Connection) => Promise<void>
) {
  const clients = new Map<LockStore, Connection>()
  async function createStore() {
    const connection = await connect()
    const store = new RedisStore({ connection, ...options })
    clients.set(store, connection)
    return store
  }
  async function closeStore(store: LockStore) {
    const connection = clients.get(store)!
    clients.delete(store)
    await store.close?.()
    await clear?.(connection)
    await connection.quit()
  }
  return {
    createStore,
    closeStore,
    /**
     * Another process's store: its own client on the same server
     */
    handsOver: {
      async createPeer() {
        const store = await createStore()
        return { store, close: () => closeStore(store) }
      },
    },
  }
}
