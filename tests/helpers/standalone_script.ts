/**
 * A script using a store without an app, as a user's would: it waits for a
 * lock once (so the store opens its subscriber or LISTEN connection),
 * closes its own connection and says `done`; it must then exit by itself.
 *
 *   node --import=@poppinss/ts-exec standalone_script.ts redis <key>
 *   node --import=@poppinss/ts-exec standalone_script.ts postgres <key> <table>
 */
import { Redis } from 'ioredis'
import knex from 'knex'
import { LockFactory } from '../../src/lock_factory.ts'
import { DatabaseStore } from '../../src/stores/database/database_store.ts'
import { RedisStore } from '../../src/stores/redis/redis_store.ts'
import type { LockStore } from '../../src/types.ts'
import { connectionConfig } from './databases.ts'
import { SERVICES } from './services.ts'

const [backend, key, tableName] = process.argv.slice(2)

async function waitOnce(store: LockStore) {
  const locks = new LockFactory(store)
  const holder = locks.createLock(key, '10s')
  if (!(await holder.acquire())) throw new Error('the holder could not acquire')
  const waiter = locks.createLock(key, '10s')
  const waiting = waiter.acquire({ retry: { delay: '5s', timeout: '10s' } })
  setTimeout(() => void holder.release(), 200)
  if (!(await waiting)) throw new Error('the waiter could not acquire')
  await waiter.release()
}

if (backend === 'redis') {
  const connection = new Redis({ port: SERVICES.redis.port })
  await waitOnce(new RedisStore({ connection }))
  await connection.quit()
} else {
  const connection = knex(connectionConfig('postgres'))
  await waitOnce(new DatabaseStore({ connection, tableName }))
  await connection.destroy()
}
console.log('done')
