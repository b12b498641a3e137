import { test } from '@japa/runner'
import knex, { type Knex } from 'knex'
import { errors, LockFactory } from '../index.ts'
import { DatabaseStore } from '../src/stores/main.ts'
import { sleep } from '../src/wait.ts'
import { dialectAvailable, openTestDatabase } from './helpers/databases.ts'
import { SERVICES } from './helpers/services.ts'

const available = await dialectAvailable('mysql')

/**
 * The `mysql` driver (not mysql2) on the MariaDB server, with a lock table
 * made by the configure hook's migration
 */
async function mysqlDriverStore(cleanup: (callback: () => Promise<void>) => void) {
  const database = await openTestDatabase('mysql')
  cleanup(() => database.close())
  const { host, port, user, password, database: name } = SERVICES.mariadb
  const client: Knex = knex({
    client: 'mysql',
    connection: { host, port, user, password, database: name },
  })
  cleanup(() => client.destroy())
  const store = new DatabaseStore({ connection: client, tableName: database.tableName })
  cleanup(() => store.close())
  return { store, client, tableName: database.tableName }
}

test.group('Database store (MariaDB, mysql driver)', (group) => {
  group.tap((t) => t.skip(!available, 'MariaDB is not reachable'))

  test('locks, refuses, releases and hands out increasing tokens', async ({ assert, cleanup }) => {
    const { store, client } = await mysqlDriverStore(cleanup)
    assert.equal(client.client.driverName, 'mysql')
    const locks = new LockFactory(store)
    const first = locks.createLock('driver.1', '10s')
    const second = locks.createLock('driver.1', '10s')
    assert.isTrue(await first.acquireImmediately())
    assert.isFalse(await second.acquireImmediately())
    assert.isAbove(second.getHolderRemainingTime()!, 5000)
    assert.isTrue(await first.isOwned())
    await assert.rejects(() => second.release(), errors.E_LOCK_NOT_OWNED as any)
    await first.release()
    assert.isTrue(await second.acquireImmediately())
    assert.isAbove(second.fencingToken!, first.fencingToken!)
    await second.release()
  })

  test('expiry by the database clock: an expired lock is taken over and its release refused', async ({
    assert,
    cleanup,
  }) => {
    const { store } = await mysqlDriverStore(cleanup)
    const locks = new LockFactory(store)
    const stale = locks.createLock('driver.2', 200)
    await stale.acquire()
    for (let tick = 0; tick < 250 && (await stale.isLocked()); tick++) await sleep(40)
    await assert.rejects(() => stale.release(), errors.E_LOCK_NOT_OWNED as any)
    const fresh = locks.createLock('driver.2', '10s')
    assert.isTrue(await fresh.acquireImmediately())
    assert.isAbove(fresh.fencingToken!, stale.fencingToken!)
    await fresh.release()
  })

  test('semaphores and waiters woken by a release', async ({ assert, cleanup }) => {
    const { store } = await mysqlDriverStore(cleanup)
    const locks = new LockFactory(store)
    const slots = [1, 2].map(() => locks.createSemaphore('driver.3', 2, '10s'))
    for (const slot of slots) assert.isTrue(await slot.acquireImmediately())
    assert.isFalse(await locks.createSemaphore('driver.3', 2, '10s').acquireImmediately())
    await slots[0].release()
    await slots[1].release()

    const holder = locks.createLock('driver.4', '60s')
    await holder.acquire()
    const waiting = locks.createLock('driver.4', '10s').acquire({
      retry: { delay: '60s', timeout: '90s' },
    })
    await sleep(100)
    await holder.release()
    const woken = await Promise.race([waiting, sleep(10_000).then(() => 'asleep')])
    assert.isTrue(woken === true, 'the waiter was not woken by the release')
  })
})
