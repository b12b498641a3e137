import { assertFreeLockNotBehindSlotWaiters } from './helpers/slot_line.ts'
import { readFile, rm } from 'node:fs/promises'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import { defineConfig as defineDatabaseConfig } from '@adonisjs/lucid'
import { MigrationRunner } from '@adonisjs/lucid/migration'
import knex, { type Knex } from 'knex'
import { defineConfig, stores } from '../index.ts'
import { E_INVALID_LOCK_CONFIG, E_LOCK_NOT_OWNED, E_LOCK_STORAGE_ERROR } from '../src/errors.ts'
import { LockFactory } from '../src/lock_factory.ts'
import { DatabaseStore, PRUNE_GRACE } from '../src/stores/database/database_store.ts'
import { dialectOf } from '../src/stores/database/dialects/main.ts'
import { Statements } from '../src/stores/database/statements.ts'
import type { LockStore, SerializedLock } from '../src/types.ts'
import { settleWithin, sleep } from '../src/wait.ts'
import { pollUntil } from './helpers/poll.ts'
import { APP_ROOT, setupLockApp } from './helpers/app.ts'
import { SERVICES, uniqueKey } from './helpers/services.ts'
import { runStandalone } from './helpers/exits.ts'
import {
  DIALECT_LABELS,
  TEST_DIALECTS,
  TMP_DIR,
  connectionConfig,
  dialectAvailable,
  openTestDatabase,
  removeSqliteFile,
  sqliteFile,
  uniqueName,
  writeMigration,
  type TestDatabase,
  type TestDialect,
} from './helpers/databases.ts'
import { registerStoreSuite } from './store_suite.ts'
import { contend, DatabaseWorkerProcess } from './workers/database_worker_process.ts'
import type { ProbeResult } from './workers/database_lock_worker.ts'

const HOUR = 3_600_000

/**
 * Rows of the lock table, straight from the database
 */
async function rowsOf(database: TestDatabase) {
  return database.client.from(database.tableName).select('*').orderBy('key')
}

async function keysOf(database: TestDatabase): Promise<string[]> {
  const rows = await rowsOf(database)
  return rows.map((row) => row.key)
}

/**
 * A TCP proxy to a database server. Once armed, it drops the next answer
 * of the server and cuts the connection, as a network failure right after
 * the server did the work would.
 */
async function startCuttingProxy(port: number) {
  const sockets = new Set<net.Socket>()
  let armed = false
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        sockets.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream)
    upstream.on('data', (chunk) => {
      if (!armed) return void client.write(chunk)
      armed = false
      client.destroy()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    arm: () => (armed = true),
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * A TCP server that accepts connections and never answers, as a database
 * server stuck before its greeting
 */
async function startSilentServer() {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer((socket) => {
    accepted++
    sockets.add(socket)
    /**
     * Read and ignored: a socket never read would not see the client end
     */
    socket.resume()
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    open: () => sockets.size,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * Checks every 200 ms until `check` passes, for up to `ms`
 */
async function until(check: () => boolean | Promise<boolean>, ms = 10_000) {
  await pollUntil(check, ms, 200)
}

/**
 * Whether the promise settles within `ms`
 */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return (
    (await settleWithin(
      promise.then(() => true),
      ms
    )) === true
  )
}

const SILENT_LOG = { warn() {}, error() {}, debug() {}, deprecate() {} }

/**
 * A connection config nobody listens on
 */
function unreachableConfig(dialect: TestDialect, file: string): Knex.Config {
  const config = { ...connectionConfig(dialect, { sqliteFile: file }), log: SILENT_LOG }
  if (dialect === 'sqlite') return config
  return {
    ...config,
    connection: { ...(config.connection as object), port: 1 },
    acquireConnectionTimeout: 5000,
  }
}

/**
 * The conformance suite, on stores using a Lucid query client and a table
 * made by the migration the configure hook writes
 */
function registerDatabaseSuite(
  name: string,
  dialect: TestDialect,
  skip: string | false,
  sqliteClient?: 'sqlite3'
) {
  const databases = new Map<LockStore, TestDatabase>()
  /**
   * The instances of one test share a table, as servers on one database
   * do; it is dropped when the last of them closes
   */
  let shared: { database: Promise<TestDatabase>; users: number } | undefined
  registerStoreSuite(name, {
    skip,
    handsOver: { wakesOtherProcesses: dialect === 'postgres' },
    async createStore() {
      shared ??= { database: openTestDatabase(dialect, { sqliteClient }), users: 0 }
      shared.users++
      const database = await shared.database.catch((error) => {
        shared = undefined
        throw error
      })
      const store = new DatabaseStore({
        connection: database.client,
        tableName: database.tableName,
      })
      databases.set(store, database)
      return store
    },
    async closeStore(store) {
      const database = databases.get(store)!
      databases.delete(store)
      try {
        await store.close?.()
      } finally {
        if (--shared!.users === 0) {
          shared = undefined
          await database.close()
        }
      }
    },
  })
}

for (const dialect of TEST_DIALECTS) {
  const label = DIALECT_LABELS[dialect]
  const available = await dialectAvailable(dialect)
  const skipReason = `${label} is not reachable`

  registerDatabaseSuite(`Database store (${label})`, dialect, available ? false : skipReason)

  test.group(`Database store (${label})`, (group) => {
    let database: TestDatabase
    let workers: DatabaseWorkerProcess[]
    let opened: DatabaseStore[]

    group.tap((t) => {
      t.skip(!available, skipReason)
      t.timeout(30_000)
    })
    group.each.setup(async () => {
      workers = []
      opened = []
      database = await openTestDatabase(dialect)
      return async () => {
        await Promise.all(workers.map((worker) => worker.stop()))
        await Promise.all(opened.map((store) => store.close()))
        await database.close()
      }
    })

    /**
     * A store on the test's table, closed after the test
     */
    const storeOn = (options: { pruneInterval?: number | false } = {}) => {
      const store = new DatabaseStore({
        connection: database.client.getWriteClient(),
        tableName: database.tableName,
        ...options,
      })
      opened.push(store)
      return store
    }

    const task = (key: string) => ({
      config: database.config,
      tableName: database.tableName,
      prefix: 'test',
      key,
    })

    test('acquire, release and extend are one statement each; a failed try too, but on SQLite', async ({
      assert,
      cleanup,
    }) => {
      const store = storeOn({ pruneInterval: false })
      const connection = database.client.getWriteClient()
      const statements: string[] = []
      const count = (query: { sql: string }) => statements.push(query.sql)
      connection.on('query', count)
      cleanup(() => void connection.off('query', count))

      const measure = async (work: () => Promise<unknown>) => {
        statements.length = 0
        await work()
        return statements.length
      }
      assert.equal(await measure(() => store.save('k', 'owner-1', 10_000)), 1)
      assert.equal(await measure(() => store.extend('k', 'owner-1', 10_000)), 1)
      /**
       * SQLite's upsert returns nothing when it refuses: the time left
       * takes a SELECT
       */
      assert.equal(
        await measure(() => store.save('k', 'owner-2', 10_000)),
        dialect === 'sqlite' ? 2 : 1
      )
      assert.equal(await measure(() => store.delete('k', 'owner-1')), 1)
      assert.equal(await measure(() => store.exists('k')), 1)
    })

    test('a free lock is taken at once while semaphore waiters of the same key wait', async ({
      assert,
    }) => {
      const locks = new LockFactory(storeOn())
      await assertFreeLockNotBehindSlotWaiters(assert, locks)
    }).timeout(30_000)

    test('a failed acquire reports how long the holder still has', async ({ assert }) => {
      const store = storeOn()
      assert.deepInclude(await store.save('k', 'holder', 5000), { acquired: true })

      const refused = await store.save('k', 'waiter', 5000)
      assert.isFalse(refused.acquired)
      assert.isAbove(refused.retryAfter!, 3000)
      assert.isAtMost(refused.retryAfter!, 5000)

      await store.save('forever', 'holder', null)
      assert.deepEqual(await store.save('forever', 'waiter', 5000), {
        acquired: false,
        retryAfter: null,
      })
    })

    test('inspect reports the holder, its remaining time and its token', async ({ assert }) => {
      const store = storeOn()
      const { fencingToken } = await store.save('k', 'holder', 5000)
      const inspection = await store.inspect('k')
      assert.equal(inspection!.owner, 'holder')
      assert.equal(inspection!.fencingToken, fencingToken)
      assert.isAbove(inspection!.expiresIn!, 3000)
      assert.isAtMost(inspection!.expiresIn!, 5000)

      await store.save('forever', 'holder', null)
      assert.isNull((await store.inspect('forever'))!.expiresIn)
      await store.delete('k', 'holder')
      assert.isNull(await store.inspect('k'))
      assert.isNull(await store.inspect('never-taken'))
    })

    test('keys differing only by case, accents or trailing spaces are different locks', async ({
      assert,
    }) => {
      const store = storeOn()
      const keys = ['Order.1', 'order.1', 'ordér.1', 'order.1 ', 'order.1  ']
      for (const key of keys) {
        assert.deepInclude(
          await store.save(key, `owner of ${key}`, 10_000),
          { acquired: true },
          key
        )
      }
      for (const key of keys) assert.equal(await store.owner(key), `owner of ${key}`)
      for (const key of keys) await store.delete(key, `owner of ${key}`)
    })

    test('keys up to 1024 bytes fit the column: long ones are stored shortened, and kept apart', async ({
      assert,
    }) => {
      const store = storeOn()
      const long = 'é'.repeat(511) + 'a'
      const sibling = 'é'.repeat(511) + 'b'
      assert.deepInclude(await store.save(long, 'a', 10_000), { acquired: true })
      assert.deepInclude(await store.save(sibling, 'b', 10_000), { acquired: true })
      const refused = await store.save(long, 'c', 10_000)
      assert.isFalse(refused.acquired)
      assert.equal(await store.owner(long), 'a')

      const stored = await keysOf(database)
      assert.lengthOf(stored, 2)
      for (const key of stored) {
        assert.isAtMost([...key].length, 255)
        assert.match(key, /^é{100}#[\w-]{43}$/)
      }
      await store.delete(long, 'a')
      assert.isFalse(await store.exists(long))
      assert.isTrue(await store.exists(sibling))
    })

    test('the fencing value survives release, expiry and force release as the row stays', async ({
      assert,
    }) => {
      const store = storeOn()
      const first = await store.save('k', 'a', 10_000)
      await store.delete('k', 'a')
      let [row] = await rowsOf(database)
      assert.isNull(row.owner)
      assert.equal(Number(row.fencing), first.fencingToken)

      const second = await store.save('k', 'b', 10_000)
      await store.forceDelete('k')
      ;[row] = await rowsOf(database)
      assert.isNull(row.owner)
      assert.equal(Number(row.fencing), second.fencingToken)
      assert.isAbove(second.fencingToken!, first.fencingToken!)
    })

    test('expiry comes from the database clock: processes an hour apart agree', async ({
      assert,
    }) => {
      const locks = new LockFactory(storeOn(), { prefix: 'test' })
      const held = locks.createLock('skew.held', '60s')
      assert.isTrue(await held.acquire())

      /**
       * An hour ahead, a store trusting the app clock would see the lock
       * long expired; an hour behind, one would think its own lock lasts
       * an hour more
       */
      const [ahead, behind] = await Promise.all([
        DatabaseWorkerProcess.start({ ...task('skew.held'), task: 'probe' }, workers, {
          clockOffset: HOUR,
        }),
        DatabaseWorkerProcess.start({ ...task('skew.behind'), task: 'hold', ttl: 1500 }, workers, {
          clockOffset: -HOUR,
        }),
      ])
      ahead.go()
      const probe = await ahead.result<ProbeResult>()
      assert.isAbove(probe.now, Date.now() + HOUR - 60_000)
      assert.isFalse(probe.result.acquired)
      assert.isTrue(probe.isLocked)
      assert.isAbove(probe.result.retryAfter!, 1000)
      assert.isAtMost(probe.result.retryAfter!, 60_000)

      behind.go()
      const serialized = await behind.result<SerializedLock>()
      assert.isBelow(serialized.expirationTime!, Date.now() - HOUR + 5000)

      const waiter = locks.createLock('skew.behind', '5s')
      assert.isTrue(await waiter.isLocked())
      const startedAt = Date.now()
      assert.isTrue(await waiter.acquire({ retry: { delay: 50, timeout: '15s' } }))
      assert.isBelow(Date.now() - startedAt, 12_000)
      await held.release()
      await waiter.release()
    }).timeout(60_000)

    test('3 processes x 4 contenders never overlap, and fencing tokens keep increasing', async ({
      assert,
      cleanup,
    }) => {
      const name = uniqueName('contend')
      const markerFile = fileURLToPath(new URL(`${name}.marker`, TMP_DIR))
      const tokensFile = fileURLToPath(new URL(`${name}.tokens`, TMP_DIR))
      cleanup(async () => {
        await rm(markerFile, { force: true })
        await rm(tokensFile, { force: true })
      })

      const results = await contend(
        3,
        {
          ...task('contended'),
          ttl: '20s',
          workers: 4,
          rounds: 5,
          holdMs: 2,
          markerFile,
          tokensFile,
          retry: { delay: 30, timeout: '90s' },
        },
        workers
      )
      assert.deepEqual(
        results.map((result) => result.overlaps),
        [0, 0, 0]
      )
      assert.equal(
        results.reduce((total, result) => total + result.served, 0),
        60
      )
      const lines = await readFile(tokensFile, 'utf8')
      const tokens = lines.trim().split('\n').map(Number)
      assert.lengthOf(tokens, 60)
      for (let index = 1; index < tokens.length; index++) {
        assert.isAbove(tokens[index], tokens[index - 1])
      }
    }).timeout(120_000)

    test('a lock taken in one process is released from its serialized form in another', async ({
      assert,
    }) => {
      const locks = new LockFactory(storeOn(), { prefix: 'test', storeName: 'database' })
      const mine = locks.createLock('handover.1', '20s')
      await mine.acquire()
      const releaser = await DatabaseWorkerProcess.start(
        { ...task('handover.1'), task: 'release', serialized: mine.serialize() },
        workers
      )
      releaser.go()
      const released = await releaser.result<{ owned: boolean; fencingToken: number }>()
      assert.deepEqual(released, { owned: true, fencingToken: mine.fencingToken! })
      assert.isFalse(await mine.isLocked())
      await assert.rejects(() => mine.release(), E_LOCK_NOT_OWNED as any)

      const holder = await DatabaseWorkerProcess.start(
        { ...task('handover.2'), task: 'hold', ttl: '20s' },
        workers
      )
      holder.go()
      const restored = locks.restoreLock(await holder.result<SerializedLock>())
      assert.isTrue(await restored.isOwned())
      await restored.release()
      assert.isFalse(await restored.isLocked())
    }).timeout(60_000)

    test('a missing table raises E_LOCK_STORAGE_ERROR naming the migration to run', async ({
      assert,
    }) => {
      const store = new DatabaseStore({
        connection: database.client,
        tableName: uniqueName('missing'),
      })
      const lock = new LockFactory(store).createLock('order.1')
      for (const action of [
        () => lock.acquire(),
        () => lock.isLocked(),
        () => lock.release(),
        () => store.prune(),
      ]) {
        try {
          await action()
          assert.fail('expected a missing table error')
        } catch (error) {
          assert.instanceOf(error, E_LOCK_STORAGE_ERROR)
          assert.include(error.message, `"${store.tableName}" does not exist`)
          assert.include(error.message, 'node ace configure adonis-lock --store=database')
          assert.include(error.message, 'node ace migration:run')
          assert.exists(error.cause)
        }
      }
    })

    test('a database that cannot be reached raises E_LOCK_STORAGE_ERROR with the cause', async ({
      assert,
      cleanup,
    }) => {
      const file = fileURLToPath(new URL(`${uniqueName('nowhere')}/locks.sqlite`, TMP_DIR))
      const connection = knex(unreachableConfig(dialect, file))
      cleanup(() => connection.destroy())
      const lock = new LockFactory(new DatabaseStore({ connection })).createLock('order.1')
      try {
        await lock.acquire()
        assert.fail('expected a storage error')
      } catch (error) {
        assert.instanceOf(error, E_LOCK_STORAGE_ERROR)
        assert.equal(error.status, 503)
        assert.instanceOf(error.cause, Error)
      }
    }).timeout(20_000)

    if (dialect !== 'sqlite') {
      test('an acquire whose answer is lost releases what it may have taken', async ({
        assert,
        cleanup,
      }) => {
        const server = SERVICES[dialect === 'postgres' ? 'postgres' : 'mariadb']
        const proxy = await startCuttingProxy(server.port)
        cleanup(() => proxy.close())
        const config = connectionConfig(dialect)
        const connection = knex({
          ...config,
          connection: { ...(config.connection as object), port: proxy.port },
          pool: { min: 0, max: 1 },
          log: SILENT_LOG,
        })
        cleanup(() => connection.destroy())
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        cleanup(() => store.close())
        /**
         * Once prepared on the connection (mysql2 prepares in a round trip
         * of its own), the acquire statement's answer is the one cut
         */
        await store.save('warm-up', 'lost', 1000)

        proxy.arm()
        await assert.rejects(() => store.save('k', 'lost', null), E_LOCK_STORAGE_ERROR as any)

        /**
         * The row is there, so the statement did commit; the failed acquire
         * released it rather than leave a lock without expiry and owner
         */
        const rowsOfK = async () => {
          const rows = await rowsOf(database)
          return rows.filter((row) => row.key === 'k')
        }
        let rows = await rowsOfK()
        for (let tries = 0; rows[0]?.owner !== null && tries < 100; tries++) {
          await sleep(50)
          rows = await rowsOfK()
        }
        assert.lengthOf(rows, 1)
        assert.isNull(rows[0].owner)
        assert.deepInclude(await storeOn().save('k', 'next', 1000), { acquired: true })
      })
    }

    test('prune deletes rows expired or released over a second ago, and tokens keep increasing', async ({
      assert,
    }) => {
      const store = storeOn({ pruneInterval: false })
      const expired = await store.save('expired', 'a', 100)
      await store.save('released', 'a', 10_000)
      await store.delete('released', 'a')
      await store.save('held', 'a', 10_000)
      await store.save('forever', 'a', null)

      await sleep(300)
      assert.equal(await store.prune(), 0)
      await sleep(PRUNE_GRACE)
      assert.equal(await store.prune(), 2)
      assert.deepEqual(await keysOf(database), ['forever', 'held'])
      const again = await store.save('expired', 'b', 10_000)
      assert.isAbove(again.fencingToken!, expired.fencingToken!)
      assert.isTrue(await store.exists('held'))
      assert.isTrue(await store.exists('forever'))
    })

    test('a successful acquire now and then prunes expired rows in the background', async ({
      assert,
    }) => {
      const quiet = storeOn({ pruneInterval: false })
      for (let index = 0; index < 5; index++) await quiet.save(`old.${index}`, 'a', 50)
      await sleep(PRUNE_GRACE + 200)

      const store = storeOn({ pruneInterval: 0 })
      await store.save('fresh', 'b', 10_000)
      await store.close()
      assert.deepEqual(await keysOf(database), ['fresh'])
    })

    test('100,000 distinct keys leave the table (near) empty after their ttl', async ({
      assert,
    }) => {
      const writer = database.client.getWriteClient()
      /**
       * Rows as 100,000 acquires of distinct keys leave them, a ttl of 50 ms
       * ago (in bulk: one acquire each would take minutes)
       */
      const { rows: clock } = await (async () => {
        const store = storeOn({ pruneInterval: false })
        await store.save('clock', 'a', 1)
        return { rows: await rowsOf(database) }
      })()
      const expired = Number(clock[0].expiration) - PRUNE_GRACE - 50
      const batch = dialect === 'sqlite' ? 5000 : 10_000
      for (let start = 0; start < 100_000; start += batch) {
        const rows = Array.from({ length: batch }, (_, index) => ({
          key: `distinct.${start + index}`,
          owner: 'gone',
          expiration: expired,
          fencing: 1,
        }))
        await writer.batchInsert(database.tableName, rows, dialect === 'sqlite' ? 100 : batch)
      }

      const store = storeOn({ pruneInterval: 100 })
      const emptied = await pollUntil(
        async () => {
          await store.save('busy', 'b', 10)
          const [{ count }] = await writer(database.tableName).count({ count: '*' })
          return Number(count) <= 10
        },
        60_000,
        200
      )
      const [{ count }] = await writer(database.tableName).count({ count: '*' })
      assert.isTrue(emptied, `${count} rows left`)
    }).timeout(120_000)

    if (dialect !== 'sqlite') {
      test('prune never waits for a row another transaction holds', async ({ assert }) => {
        const store = storeOn({ pruneInterval: false })
        for (let index = 0; index < 50; index++) await store.save(`gone.${index}`, 'a', 1)
        await store.save('held', 'b', 60_000)
        await sleep(PRUNE_GRACE + 200)
        const writer = database.client.getWriteClient()
        /**
         * An extend of the held lock, not yet committed, locks its row
         */
        const extending = await writer.transaction()
        try {
          await extending(database.tableName)
            .where('key', 'held')
            .update({ expiration: writer.raw('expiration + 1') })
          const pruning = store.prune()
          pruning.catch(() => {})
          assert.equal(await settleWithin(pruning, 10_000), 50, 'prune waited for the held row')
        } finally {
          await extending.rollback()
        }
        assert.deepEqual(await keysOf(database), ['held'])
      }).timeout(60_000)
    }

    test("a semaphore's rows are apart from every lock, whatever its key", async ({ assert }) => {
      const store = storeOn()
      assert.deepInclude(await store.saveSlot('pool', 'a', 2, 10_000), { acquired: true })
      assert.deepInclude(await store.saveSlot('pool', 'b', 2, 10_000), { acquired: true })
      const keys = ['pool#slot0', 'pool#slot1', 'pool#slots']
      for (const key of keys) {
        assert.deepInclude(
          await store.save(key, `owner of ${key}`, 10_000),
          { acquired: true },
          key
        )
      }
      await store.deleteSlot('pool', 'a', 2)
      assert.deepInclude(await store.saveSlot('pool', 'c', 2, 10_000), { acquired: true })
      assert.sameMembers(await store.slotOwners('pool', 2), ['b', 'c'])

      await store.forceDeleteSlots('pool', 2)
      assert.deepEqual(await store.slotOwners('pool', 2), [])
      for (const key of keys) assert.equal(await store.owner(key), `owner of ${key}`)
    })

    if (dialect === 'sqlite') {
      test('semaphore tokens keep growing whichever slot they go with', async ({ assert }) => {
        const store = storeOn({ pruneInterval: false })
        const tokens: number[] = []
        /**
         * Taken back to back, slots are now and then taken within the same
         * millisecond, which is as fine as SQLite's clock gets
         */
        for (let round = 0; round < 200; round++) {
          for (const owner of ['a', 'b', 'c', 'd']) {
            const result = await store.saveSlot('pool', owner, 4, 10_000)
            assert.isTrue(result.acquired)
            tokens.push(result.fencingToken!)
          }
          await store.forceDeleteSlots('pool', 4)
        }
        const notGrowing = tokens.filter((token, index) => index > 0 && token <= tokens[index - 1])
        assert.deepEqual(notGrowing, [])
      })
    } else {
      test('semaphore tokens grow in the order acquires return, also past one that waited for its slot', async ({
        assert,
      }) => {
        const store = storeOn({ pruneInterval: false })
        const writer = database.client.getWriteClient()
        const waitingOnLocks = async () => {
          const pattern = `%${database.tableName}%`
          if (dialect === 'postgres') {
            const { rows } = await writer.raw(
              `SELECT count(*) AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE ?`,
              [pattern]
            )
            return Number(rows[0].waiting)
          }
          /**
           * MariaDB refreshes this table only when nobody read it for 100
           * ms: until() reads it every 200 ms
           */
          const [rows] = await writer.raw(
            `SELECT count(*) AS waiting FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE ?`,
            [pattern]
          )
          return Number(rows[0].waiting)
        }
        const handedOut: number[] = []
        const take = (owner: string) => {
          let done = false
          const taking = store.saveSlot('pool', owner, 2, 10_000).then((result) => {
            done = true
            assert.isTrue(result.acquired, owner)
            handedOut.push(result.fencingToken!)
          })
          return { taking, done: () => done }
        }
        await store.saveSlot('pool', 'a', 2, 10_000)
        await store.saveSlot('pool', 'b', 2, 10_000)
        await store.forceDeleteSlots('pool', 2)

        /**
         * A first taker finds one slot free, which another transaction
         * holds locked: it waits. Once the other slot's holder expired, a
         * second taker may take it at once, and return first.
         */
        for (let round = 0; round < 10; round++) {
          const holder = `holder.${round}`
          await store.saveSlot('pool', holder, 2, 500)
          const rows = await rowsOf(database)
          const [free] = rows.filter((row) => /#slot\d$/.test(row.key) && row.owner !== holder)
          const locker = await writer.transaction()
          try {
            await locker.raw('SELECT 1 FROM ?? WHERE ?? = ? FOR UPDATE', [
              database.tableName,
              'key',
              free.key,
            ])
            const first = take(`first.${round}`)
            await until(async () => first.done() || (await waitingOnLocks()) === 1)
            await until(async () => {
              const owners = await store.slotOwners('pool', 2)
              return !owners.includes(holder)
            })
            const second = take(`second.${round}`)
            await until(async () => second.done() || (await waitingOnLocks()) === 2)
            await locker.commit()
            await Promise.all([first.taking, second.taking])
          } finally {
            if (!locker.isCompleted()) await locker.rollback()
          }
          await store.forceDeleteSlots('pool', 2)
        }
        const notGrowing = handedOut.filter(
          (token, index) => index > 0 && token <= handedOut[index - 1]
        )
        assert.deepEqual(notGrowing, [])
      }).timeout(60_000)
    }

    if (dialect === 'postgres') {
      test('a waiter in another process is woken by NOTIFY, long before its poll delay', async ({
        assert,
      }) => {
        const locks = new LockFactory(storeOn(), { prefix: 'test' })
        const holder = locks.createLock('wake', '30s')
        await holder.acquire()
        const waiter = await DatabaseWorkerProcess.start(
          { ...task('wake'), task: 'wait', retry: { delay: '20s', timeout: '40s' } },
          workers
        )
        await sleep(500)
        const releasedAt = Date.now()
        await holder.release()
        const woken = await waiter.result<{ acquired: boolean; at: number }>()
        assert.isTrue(woken.acquired)
        assert.isBelow(woken.at - releasedAt, 5000)
      }).timeout(60_000)

      test('the LISTEN connection is opened on the first wait, outside the pool, and closed by close()', async ({
        assert,
        cleanup,
      }) => {
        const applicationName = uniqueName('adonis_lock_test')
        const config = connectionConfig('postgres')
        const connection = knex({
          ...config,
          connection: { ...(config.connection as object), application_name: applicationName },
        })
        cleanup(() => connection.destroy())
        const listening = async () => {
          const { rows } = await database.client
            .getWriteClient()
            .raw(
              `SELECT pid FROM pg_stat_activity WHERE application_name = ? AND query LIKE 'LISTEN%'`,
              [applicationName]
            )
          return rows.length
        }
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        cleanup(() => store.close())
        await store.save('k', 'holder', 10_000)
        assert.equal(await listening(), 0)

        await store.waitForRelease!('k', 300)
        assert.equal(await listening(), 1)
        const pool = connection.client.pool
        assert.equal(pool.numUsed() + pool.numFree() + pool.numPendingCreates(), 1)

        await store.close()
        for (let tries = 0; (await listening()) > 0 && tries < 50; tries++) await sleep(100)
        assert.equal(await listening(), 0)
        assert.isTrue(await store.exists('k'))
      })

      /**
       * A knex of a single connection: the store's statements and the
       * test's own queries then run in the same session
       */
      const oneConnection = (cleanup: (fn: () => Promise<void>) => void) => {
        const connection = knex({
          ...connectionConfig('postgres'),
          pool: { min: 0, max: 1 },
          log: SILENT_LOG,
        })
        cleanup(() => connection.destroy())
        return connection
      }

      test('a script that waited on a lock exits once it destroyed its own knex', async ({
        assert,
      }) => {
        const run = await runStandalone(['postgres', uniqueKey('exits'), database.tableName])
        assert.isTrue(run.done, run.output)
        assert.isTrue(run.exited, 'the script was still running 10 s after closing its connection')
        assert.equal(run.code, 0, run.output)
      }).timeout(90_000)

      test('statements are prepared once per connection, unless preparedStatements is false', async ({
        assert,
        cleanup,
      }) => {
        for (const preparedStatements of [true, false]) {
          const connection = oneConnection(cleanup)
          const store = new DatabaseStore({
            connection,
            tableName: database.tableName,
            preparedStatements,
          })
          for (let round = 0; round < 2; round++) {
            assert.deepInclude(await store.save('k', 'holder', 10_000), { acquired: true })
            assert.deepInclude(await store.save('k', 'waiter', 10_000), { acquired: false })
            await store.delete('k', 'holder')
          }
          const { rows } = await connection.raw(
            `SELECT name FROM pg_prepared_statements WHERE name LIKE 'adonis\\_lock\\_%'`
          )
          assert.lengthOf(rows, preparedStatements ? 2 : 0)
        }
      })

      test("a release leaves the session's synchronous_commit as it found it", async ({
        assert,
        cleanup,
      }) => {
        const connection = oneConnection(cleanup)
        const setting = async () => {
          const { rows } = await connection.raw('SHOW synchronous_commit')
          return rows[0].synchronous_commit
        }
        const before = await setting()
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        await store.save('k', 'holder', 10_000)
        await store.delete('k', 'holder')
        assert.equal(await setting(), before)
      })

      test("a refused try neither writes nor locks the holder's row", async ({ assert }) => {
        const store = storeOn()
        await store.save('k', 'holder', 10_000)
        const version = async () => {
          const { rows } = await database.client
            .getWriteClient()
            .raw(
              `SELECT CAST(xmin AS text) AS xmin, CAST(xmax AS text) AS xmax, CAST(ctid AS text) AS ctid FROM ?? WHERE "key" = 'k'`,
              [database.tableName]
            )
          return rows[0]
        }
        const before = await version()
        assert.deepInclude(await store.save('k', 'waiter', 10_000), { acquired: false })
        assert.deepEqual(await version(), before)
      })

      test('a try that loses a free row to a concurrent taker reports no retry time', async ({
        assert,
      }) => {
        const store = storeOn()
        await store.save('k', 'first', 10_000)
        await store.delete('k', 'first')
        const writer = database.client.getWriteClient()
        const taker = await writer.transaction()
        try {
          await taker.raw(
            `UPDATE ?? SET "owner" = 'taker', "expiration" = "expiration" + 60000 WHERE "key" = 'k'`,
            [database.tableName]
          )
          const attempt = store.save('k', 'late', 10_000)
          /**
           * The row was free when the attempt started: it waits for the
           * taker to commit, then checks the row again
           */
          const waiting = async () => {
            const { rows } = await writer.raw(
              `SELECT count(*) AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE ?`,
              [`%${database.tableName}%`]
            )
            return Number(rows[0].waiting)
          }
          for (let tries = 0; (await waiting()) === 0 && tries < 100; tries++) await sleep(50)
          await taker.commit()
          assert.deepEqual(await attempt, { acquired: false, retryAfter: undefined })
        } finally {
          if (!taker.isCompleted()) await taker.rollback()
        }
        assert.equal((await store.inspect('k'))!.owner, 'taker')
      })

      test('a statement whose table changed under its prepared plan fails once, then works', async ({
        assert,
        cleanup,
      }) => {
        const connection = oneConnection(cleanup)
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        await store.save('k', 'holder', 10_000)
        assert.equal((await store.inspect('k'))!.owner, 'holder')
        await connection.raw('ALTER TABLE ?? ALTER COLUMN "owner" TYPE varchar(100)', [
          database.tableName,
        ])

        await assert.rejects(() => store.inspect('k'), E_LOCK_STORAGE_ERROR as any)
        assert.equal((await store.inspect('k'))!.owner, 'holder')
      })

      test('once a missing table is created, the same connection takes locks', async ({
        assert,
        cleanup,
      }) => {
        const connection = oneConnection(cleanup)
        const tableName = uniqueName('late')
        const store = new DatabaseStore({ connection, tableName })
        await assert.rejects(() => store.save('k', 'holder', 10_000), E_LOCK_STORAGE_ERROR as any)

        await connection.raw('CREATE TABLE ?? (LIKE ?? INCLUDING ALL)', [
          tableName,
          database.tableName,
        ])
        cleanup(() => connection.schema.dropTableIfExists(tableName))
        assert.deepInclude(await store.save('k', 'holder', 10_000), { acquired: true })
      })

      test('when the LISTEN connection drops, waiters retry and the next wait reconnects', async ({
        assert,
        cleanup,
      }) => {
        const applicationName = uniqueName('adonis_lock_test')
        const config = connectionConfig('postgres')
        const connection = knex({
          ...config,
          connection: { ...(config.connection as object), application_name: applicationName },
        })
        cleanup(() => connection.destroy())
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        cleanup(() => store.close())
        await store.save('k', 'holder', 30_000)
        await store.waitForRelease!('k', 300)

        const waiting = store.waitForRelease!('k', 20_000)
        const startedAt = Date.now()
        await database.client
          .getWriteClient()
          .raw(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ? AND query LIKE 'LISTEN%'`,
            [applicationName]
          )
        await waiting
        assert.isBelow(Date.now() - startedAt, 5000)

        const woken = store.waitForRelease!('k', 20_000)
        await sleep(500)
        const releasedAt = Date.now()
        await store.delete('k', 'holder')
        await woken
        assert.isBelow(Date.now() - releasedAt, 5000)
      })

      test('force releasing a semaphore wakes one waiter per freed slot', async ({ assert }) => {
        const store = storeOn()
        await store.saveSlot('pool', 'a', 2, 30_000)
        await store.saveSlot('pool', 'b', 2, 30_000)
        await store.waitForSlot('pool', 300)

        const waiters = [store.waitForSlot('pool', 30_000), store.waitForSlot('pool', 30_000)]
        await store.forceDeleteSlots('pool', 2)
        assert.isTrue(await settlesWithin(Promise.all(waiters), 15_000))
      }).timeout(60_000)

      /**
       * A knex on a server that accepts connections and never answers
       */
      const silentConnection = async (
        cleanup: (fn: () => Promise<void>) => void,
        options: Knex.Config = {}
      ) => {
        const server = await startSilentServer()
        cleanup(() => server.close())
        const config = connectionConfig('postgres')
        const connection = knex({
          ...config,
          ...options,
          connection: { ...(config.connection as object), port: server.port },
          log: SILENT_LOG,
        })
        cleanup(() => connection.destroy())
        return { server, connection }
      }

      test('close() does not wait for a LISTEN connect that hangs, and ends it', async ({
        assert,
        cleanup,
      }) => {
        const { server, connection } = await silentConnection(cleanup)
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        await store.waitForRelease!('k', 200)
        await until(() => server.accepted() === 1)
        assert.equal(server.accepted(), 1)

        assert.isTrue(await settlesWithin(store.close(), 5000))
        await until(() => server.open() === 0)
        assert.equal(server.open(), 0)
      })

      test('a LISTEN connect that hangs gives up after acquireConnectionTimeout, and a later wait connects again', async ({
        assert,
        cleanup,
      }) => {
        const { server, connection } = await silentConnection(cleanup, {
          acquireConnectionTimeout: 1000,
        })
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        await store.waitForRelease!('k', 200)
        await until(() => server.accepted() === 1 && server.open() === 0, 20_000)
        assert.equal(server.accepted(), 1)
        assert.equal(server.open(), 0)

        await until(async () => {
          await store.waitForRelease!('k', 100)
          return server.accepted() === 2
        })
        assert.equal(server.accepted(), 2)
        await store.close()
      }).timeout(60_000)
    }

    if (dialect === 'mysql') {
      test('statements are prepared once per connection, unless preparedStatements is false; an altered table needs nothing', async ({
        assert,
        cleanup,
      }) => {
        const prepares = async (connection: Knex) => {
          const [rows] = await connection.raw("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")
          return Number(rows[0].Value)
        }
        for (const preparedStatements of [true, false]) {
          const connection = knex({ ...connectionConfig('mysql'), pool: { min: 0, max: 1 } })
          cleanup(() => connection.destroy())
          const store = new DatabaseStore({
            connection,
            tableName: database.tableName,
            preparedStatements,
          })
          for (let round = 0; round < 2; round++) {
            assert.deepInclude(await store.save('k', 'holder', 10_000), { acquired: true })
            assert.deepInclude(await store.save('k', 'waiter', 10_000), { acquired: false })
            await store.delete('k', 'holder')
          }
          /**
           * acquire (which also reports the holder's time left), release
           */
          assert.equal(await prepares(connection), preparedStatements ? 2 : 0)
        }

        const connection = knex({ ...connectionConfig('mysql'), pool: { min: 0, max: 1 } })
        cleanup(() => connection.destroy())
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        await store.save('k', 'holder', 10_000)
        await connection.raw('ALTER TABLE ?? MODIFY `owner` varchar(100) NULL', [
          database.tableName,
        ])
        assert.equal((await store.inspect('k'))!.owner, 'holder')
        await store.delete('k', 'holder')
      })

      test('on a knex client of the mysql driver, which cannot prepare, statements run through knex.raw', async ({
        assert,
        cleanup,
      }) => {
        const connection = knex({ ...connectionConfig('mysql'), pool: { min: 0, max: 1 } })
        cleanup(() => connection.destroy())
        /**
         * knex's mysql2 client is its mysql client with another driver (the
         * `mysql` package is not installed here): the store tells them
         * apart by that name
         */
        connection.client.driverName = 'mysql'
        const store = new DatabaseStore({ connection, tableName: database.tableName })
        assert.deepInclude(await store.save('k', 'holder', 10_000), { acquired: true })
        assert.deepInclude(await store.save('k', 'waiter', 10_000), { acquired: false })
        await store.delete('k', 'holder')
        assert.deepInclude(await store.saveSlot('pool', 'holder', 2, 10_000), { acquired: true })

        const [rows] = await connection.raw("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")
        assert.equal(Number(rows[0].Value), 0)
      })
    }
  })
}

/**
 * The `sqlite3` client (node-sqlite3) runs raw statements differently from
 * better-sqlite3: every statement of the store returns rows for it too
 */
const sqlite3Loads = (() => {
  try {
    createRequire(import.meta.url)('sqlite3')
    return true
  } catch {
    return false
  }
})()
if (!sqlite3Loads) {
  if (process.env.CI) throw new Error('the sqlite3 module does not load; CI needs it')
  console.warn('\n!!! the sqlite3 module does not load: its tests are SKIPPED\n')
}
registerDatabaseSuite(
  'Database store (SQLite, sqlite3 client)',
  'sqlite',
  sqlite3Loads ? false : 'the sqlite3 module does not load',
  'sqlite3'
)

test.group('Database store | setup', () => {
  test('accepts a knex instance or a Lucid query client', async ({ assert, cleanup }) => {
    const file = await sqliteFile()
    cleanup(() => removeSqliteFile(file))
    const connection = knex(connectionConfig('sqlite', { sqliteFile: file }))
    cleanup(() => connection.destroy())

    assert.equal(new DatabaseStore({ connection }).dialect, 'sqlite')
    assert.equal(
      new DatabaseStore({ connection: { getWriteClient: () => connection } }).dialect,
      'sqlite'
    )
    assert.equal(new DatabaseStore({ connection }).tableName, 'locks')
  })

  test('statements run prepared with the pg, mysql2 and better-sqlite3 drivers only', async ({
    assert,
    cleanup,
  }) => {
    /**
     * Without connection settings, knex loads no driver: the `mysql`
     * client is there although its package is not installed
     */
    const clients = {
      'pg': true,
      'mysql2': true,
      'mysql': false,
      'better-sqlite3': true,
      'sqlite3': false,
    }
    for (const [client, prepares] of Object.entries(clients)) {
      const connection = knex({ client, useNullAsDefault: true })
      cleanup(() => connection.destroy())
      const dialect = dialectOf(connection.client.dialect)!.name
      assert.equal(Statements.supports(connection, dialect), prepares, client)
    }
  })

  test('an unsupported database raises E_INVALID_LOCK_CONFIG naming the supported ones', async ({
    assert,
    cleanup,
  }) => {
    const connection = knex({ client: 'mssql' })
    cleanup(() => connection.destroy())
    assert.throws(() => new DatabaseStore({ connection }), E_INVALID_LOCK_CONFIG as any)
    try {
      new DatabaseStore({ connection })
    } catch (error) {
      assert.include(error.message, '"mssql"')
      assert.include(error.message, 'PostgreSQL')
      assert.include(error.message, 'MySQL/MariaDB')
      assert.include(error.message, 'SQLite')
    }
  })

  test('bad options raise E_INVALID_LOCK_CONFIG', async ({ assert, cleanup }) => {
    const file = await sqliteFile()
    cleanup(() => removeSqliteFile(file))
    const connection = knex(connectionConfig('sqlite', { sqliteFile: file }))
    cleanup(() => connection.destroy())

    for (const options of [
      undefined,
      {},
      { connection: {} },
      { connection, tableName: '' },
      { connection, tableName: 42 },
      { connection, pruneInterval: 'often' },
      { connection, preparedStatements: 'no' },
    ]) {
      try {
        new DatabaseStore(options as any)
        assert.fail(`${JSON.stringify(options)} was accepted`)
      } catch (error) {
        assert.instanceOf(error, E_INVALID_LOCK_CONFIG, JSON.stringify(options))
      }
    }
    assert.equal(new DatabaseStore({ connection, pruneInterval: '5m' }).dialect, 'sqlite')
  })
})

test.group('Database store | AdonisJS app', () => {
  test('configure migration run by the Lucid migrator, then stores.database from config/lock.ts', async ({
    assert,
    cleanup,
  }) => {
    const file = await sqliteFile()
    const migrationsPath = `database/${uniqueName('migrations')}`
    const migrationsDir = new URL(`${migrationsPath}/`, APP_ROOT)
    cleanup(async () => {
      await rm(migrationsDir, { recursive: true, force: true })
      await removeSqliteFile(file)
    })
    await writeMigration(migrationsDir)

    const app = await setupLockApp(
      {
        database: defineDatabaseConfig({
          connection: 'sqlite',
          connections: {
            sqlite: {
              ...(connectionConfig('sqlite', { sqliteFile: file }) as any),
              migrations: { naturalSort: true, paths: [migrationsPath] },
            },
          },
        }),
        lock: defineConfig({
          default: 'database',
          stores: { database: stores.database({ connectionName: 'sqlite' }) },
        }),
      },
      'lucid'
    )

    const db = await app.container.make('lucid.db')
    const migrator = new MigrationRunner(db, app, { direction: 'up', connectionName: 'sqlite' })
    await migrator.run()
    assert.notExists(migrator.error)
    assert.deepEqual(
      Object.values(migrator.migratedFiles).map((migration) => migration.status),
      ['completed']
    )

    const locks = await app.container.make('lock.manager')
    const lock = locks.createLock('order.1', '10s')
    assert.isTrue(await lock.acquire())
    assert.isNumber(lock.fencingToken)
    const [row] = await db.from('locks').select('*')
    assert.equal(row.key, 'lock:order.1')
    assert.equal(row.owner, lock.getOwner())
    await lock.release()
    assert.isFalse(await locks.createLock('order.1').isLocked())
  })
})
