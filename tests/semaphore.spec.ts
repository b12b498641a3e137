/**
 * Semaphores beyond the conformance suite: the Redis layout, many
 * processes holding slots at once, and the watchdog through long work, a
 * paused process and a restarted server.
 */
import { test } from '@japa/runner'
import type { TestContext } from '@japa/runner/core'
import { Redis } from 'ioredis'
import { E_LOCK_LOST } from '../src/errors.ts'
import { LockFactory } from '../src/lock_factory.ts'
import { DatabaseStore } from '../src/stores/database/database_store.ts'
import { MemoryStore } from '../src/stores/memory.ts'
import { RedisStore } from '../src/stores/redis/redis_store.ts'
import { settleWithin, sleep } from '../src/wait.ts'
import { RecordingEmitter } from './helpers/recording_emitter.ts'
import { WaitersMemoryStore } from './helpers/waiters_memory_store.ts'
import {
  DIALECT_LABELS,
  TEST_DIALECTS,
  dialectAvailable,
  openTestDatabase,
  uniqueName,
  type TestDatabase,
} from './helpers/databases.ts'
import { RedisServer, redisBinariesAvailable } from './helpers/redis_servers.ts'
import { SERVICES, serviceAvailable, uniqueKey } from './helpers/services.ts'
import type {
  PauseResult,
  SemaphoreContendResult,
  SemaphoreWorkerTask,
} from './workers/semaphore_worker.ts'
import { WorkerProcess } from './workers/worker_process.ts'

const WORKER = './semaphore_worker.ts'
const redisAvailable = await serviceAvailable('redis')
const { port } = SERVICES.redis

type Kind = 'lock' | 'semaphore'

const timers = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length

/**
 * The watchdog is gone: no timer more than before (timers of earlier
 * tests may have ended meanwhile), and no extension in two of its periods
 */
async function assertWatchdogStopped(
  assert: TestContext['assert'],
  emitter: RecordingEmitter,
  timersBefore: number,
  period: number
) {
  assert.isAtMost(timers(), timersBefore)
  const events = emitter.events.length
  await sleep(2 * period)
  assert.lengthOf(emitter.events, events, 'no event after the run')
}

/**
 * A lock, or a semaphore of one slot: what holds for one holds for the other
 */
function holdable(locks: LockFactory, kind: Kind, key: string, ttl?: number | string | null) {
  return kind === 'lock' ? locks.createLock(key, ttl) : locks.createSemaphore(key, 1, ttl)
}

function untilAborted(signal: AbortSignal, ms: number) {
  return settleWithin(
    new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })),
    ms
  )
}

/**
 * A connection to the shared server, a store and a unique prefix for one
 * test; the keys under the prefix go away with them
 */
async function setupRedis(cleanup: TestContext['cleanup'], emitter?: RecordingEmitter) {
  const connection = new Redis({ port })
  const store = new RedisStore({ connection })
  const prefix = uniqueKey('adonis-lock-test')
  cleanup(async () => {
    await store.close()
    const keys = await connection.keys(`*${prefix}*`)
    if (keys.length) await connection.del(...keys)
    await connection.quit()
  })
  await connection.ping()
  return { connection, store, prefix, locks: new LockFactory(store, { prefix, emitter }) }
}

/**
 * Runs the worker task in `processes` processes let go together
 */
async function contend(
  processes: number,
  task: Omit<SemaphoreWorkerTask, 'task'>,
  started: WorkerProcess[]
): Promise<SemaphoreContendResult[]> {
  const workers = await Promise.all(
    Array.from({ length: processes }, () =>
      WorkerProcess.start<SemaphoreWorkerTask>(WORKER, { ...task, task: 'contend' }, started)
    )
  )
  workers.forEach((worker) => worker.go())
  return Promise.all(workers.map((worker) => worker.result<SemaphoreContendResult>()))
}

test.group('Semaphores | waiting line', (group) => {
  group.each.timeout(20_000)

  const redisStore = (cleanup: TestContext['cleanup']) => {
    const connection = new Redis({ port })
    const store = new RedisStore({ connection })
    cleanup(async () => {
      await store.close()
      await connection.quit()
    })
    return store
  }

  for (const [name, createStore, skip] of [
    ['memory store line', () => new MemoryStore(), false],
    ['shared waiting line (src/waiting)', () => new WaitersMemoryStore(), false],
    ['Redis store', redisStore, !redisAvailable],
  ] as const) {
    test(`a waiter refused after its retry delay keeps its place (${name})`, async ({
      assert,
      cleanup,
    }) => {
      const locks = new LockFactory(createStore(cleanup), {
        prefix: uniqueKey('adonis-lock-test'),
      })
      const holder = locks.createSemaphore('pool', 1, '10s')
      assert.isTrue(await holder.acquire())
      const served: string[] = []
      const first = locks
        .createSemaphore('pool', 1, '10s')
        .acquire({ retry: { delay: 40, timeout: '15s' } })
        .then((acquired) => acquired && served.push('first'))
      await sleep(10)
      const second = locks
        .createSemaphore('pool', 1, '10s')
        .acquire({ retry: { delay: '10s', timeout: '15s' } })
        .then((acquired) => acquired && served.push('second'))
      /**
       * The first one's delay runs out a few times: it tries, is refused
       * and waits again
       */
      await sleep(300)
      await holder.release()
      for (let tick = 0; tick < 200 && served.length === 0; tick++) await sleep(10)
      assert.deepEqual(served, ['first'], 'the slot went to the waiter that came later')
      await locks.createSemaphore('pool', 1).forceRelease()
      await Promise.all([first, second])
    }).skip(skip, 'Redis is not reachable on 127.0.0.1:6379')
  }
})

test.group('Semaphores | memory store', () => {
  test('40 contenders on 4 slots: never more than 4 holders, 4 reached, all served', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore())
    let inside = 0
    let peak = 0
    let served = 0
    await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        for (let round = 0; round < 5; round++) {
          const [ran] = await locks.createSemaphore('crowd', 4, '10s').run(
            async () => {
              peak = Math.max(peak, ++inside)
              await sleep(index % 3)
              served++
              inside--
            },
            { retry: { delay: 20, timeout: '20s' } }
          )
          assert.isTrue(ran)
        }
      })
    )
    assert.equal(peak, 4)
    assert.equal(served, 200)
    assert.isFalse(await locks.createSemaphore('crowd', 4).isLocked())
  }).timeout(40_000)
})

test.group('Semaphores | Redis store', (group) => {
  group.tap((t) => {
    t.skip(!redisAvailable, 'Redis is not reachable on 127.0.0.1:6379')
    t.timeout(30_000)
  })

  test('slots live in one sorted set next to the fencing counter, kept until the last holder expires', async ({
    assert,
    cleanup,
  }) => {
    const { connection, locks, prefix } = await setupRedis(cleanup)
    const slots = `{${prefix}:pool}:slots`
    const long = locks.createSemaphore('pool', 3, '10s')
    const short = locks.createSemaphore('pool', 3, '2s')
    await long.acquire()
    await short.acquire()

    const [seconds] = await connection.time()
    const members = await connection.zrange(slots, 0, -1, 'WITHSCORES')
    const scores = Object.fromEntries(
      members.flatMap((value, index) =>
        index % 2 === 0 ? [[value, Number(members[index + 1])]] : []
      )
    )
    assert.sameMembers(Object.keys(scores), [long.getOwner(), short.getOwner()])
    assert.approximately(scores[long.getOwner()] - Number(seconds) * 1000, 10_000, 1500)
    assert.approximately(scores[short.getOwner()] - Number(seconds) * 1000, 2000, 1500)
    assert.isAbove(await connection.pttl(slots), 9000)
    assert.equal(
      Number(await connection.get(`{${prefix}:pool}:fencing`)),
      short.fencingToken,
      'the lock fencing counter of the key'
    )

    await long.release()
    assert.isAtMost(await connection.pttl(slots), 2000)
    const forever = locks.createSemaphore('pool', 3, null)
    await forever.acquire()
    assert.equal(await connection.pttl(slots), -1)
    assert.equal(await connection.zscore(slots, forever.getOwner()), 'inf')
    await forever.release()
    const pttl = await connection.pttl(slots)
    assert.isAbove(pttl, 0)
    assert.isAtMost(pttl, 2000)

    await short.release()
    assert.deepEqual(await connection.keys(`*${prefix}*`), [`{${prefix}:pool}:fencing`])
  })

  test('a refused slot tells how long until the first holder expires', async ({
    assert,
    cleanup,
  }) => {
    const { store, prefix } = await setupRedis(cleanup)
    const key = `${prefix}:full`
    await store.saveSlot(key, 'a', 2, 5000)
    await store.saveSlot(key, 'b', 2, 3000)
    const refused = await store.saveSlot(key, 'c', 2, 5000)
    assert.isFalse(refused.acquired)
    assert.isAbove(refused.retryAfter!, 2000)
    assert.isAtMost(refused.retryAfter!, 3000)

    /**
     * An owner already holding a slot is refused, as a held lock is
     */
    await store.saveSlot(`${key}.room`, 'a', 5, 5000)
    const again = await store.saveSlot(`${key}.room`, 'a', 5, 5000)
    assert.isFalse(again.acquired)

    await store.saveSlot(`${key}.forever`, 'a', 1, null)
    assert.deepEqual(await store.saveSlot(`${key}.forever`, 'b', 1, 5000), {
      acquired: false,
      retryAfter: null,
    })
    assert.deepEqual(await store.slotOwners(`${key}.forever`), ['a'])
  })

  test('every semaphore call is one command', async ({ assert, cleanup }) => {
    const { connection, locks } = await setupRedis(cleanup)
    const sent: string[] = []
    const sendCommand = connection.sendCommand.bind(connection)
    connection.sendCommand = (command, stream) => {
      sent.push(command.name)
      return sendCommand(command, stream)
    }
    const semaphore = locks.createSemaphore('calls', 1, '10s')
    /**
     * The first calls may load the scripts (NOSCRIPT, then EVAL)
     */
    await semaphore.acquire()
    await semaphore.isOwned()
    await semaphore.extend()
    await semaphore.release()
    await semaphore.forceRelease()
    sent.length = 0

    assert.isTrue(await semaphore.acquire())
    assert.isFalse(await locks.createSemaphore('calls', 1).acquireImmediately())
    assert.isTrue(await semaphore.isOwned())
    await semaphore.extend()
    await semaphore.release()
    await semaphore.forceRelease()
    assert.deepEqual(sent, Array(6).fill('evalsha'))
  })

  test('locks and semaphores of one key share its fencing counter', async ({ assert, cleanup }) => {
    const { locks } = await setupRedis(cleanup)
    const tokens: number[] = []
    for (let round = 0; round < 6; round++) {
      const held =
        round % 2 === 0
          ? locks.createLock('shared', '10s')
          : locks.createSemaphore('shared', 2, '10s')
      assert.isTrue(await held.acquire())
      tokens.push(held.fencingToken!)
      await held.release()
    }
    for (let index = 1; index < tokens.length; index++) {
      assert.isAbove(tokens[index], tokens[index - 1])
    }
  })

  test('forceRelease wakes one waiter per freed slot', async ({ assert, cleanup }) => {
    const { locks } = await setupRedis(cleanup)
    await locks.createSemaphore('forced', 2, '20s').acquire()
    await locks.createSemaphore('forced', 2, '20s').acquire()
    const waiting = [1, 2].map(() =>
      locks.createSemaphore('forced', 2, '20s').acquire({ retry: { delay: '30s', timeout: '20s' } })
    )
    await sleep(300)
    const releasedAt = Date.now()
    await locks.createSemaphore('forced', 2).forceRelease()
    assert.deepEqual(await Promise.all(waiting), [true, true])
    /**
     * Woken, not polling: a poll would come after 15 s or more
     */
    assert.isBelow(Date.now() - releasedAt, 10_000)
  })

  test('autoExtend keeps a 500 ms {$self} alive through 5 s of work, then leaves no timer')
    .with<Kind[]>(['lock', 'semaphore'])
    .run(async ({ assert, cleanup }, kind) => {
      const emitter = new RecordingEmitter()
      const { locks } = await setupRedis(cleanup, emitter)
      const before = timers()
      const [ran, result] = await holdable(locks, kind, 'busy', 500).run(
        async ({ signal }) => {
          let refused = 0
          for (let step = 0; step < 20; step++) {
            await sleep(250)
            if (!(await holdable(locks, kind, 'busy', 200).acquireImmediately())) refused++
          }
          return { aborted: signal.aborted, refused }
        },
        { autoExtend: true }
      )
      assert.isTrue(ran)
      assert.deepEqual(result, { aborted: false, refused: 20 })
      const names = emitter.names()
      assert.notInclude(names, 'lock:lost')
      assert.isAtLeast(names.filter((name) => name === 'lock:extended').length, 10)
      assert.equal(names.at(-1), 'lock:released')
      assert.isFalse(await holdable(locks, kind, 'busy').isLocked())
      await assertWatchdogStopped(assert, emitter, before, 500 / 3)
    })
})

test.group('Semaphores | Redis, several processes', (group) => {
  const workers: WorkerProcess[] = []
  group.tap((t) => {
    t.skip(!redisAvailable, 'Redis is not reachable on 127.0.0.1:6379')
    t.timeout(90_000)
  })
  group.each.teardown(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop()))
  })

  test('3 processes x 6 workers on 3 slots: never more than 3 holders, 3 reached, all served', async ({
    assert,
    cleanup,
  }) => {
    const { connection, prefix } = await setupRedis(cleanup)
    const counter = `${prefix}:holders`
    const results = await contend(
      3,
      {
        backend: { redis: { port } },
        prefix,
        key: 'pool',
        limit: 3,
        ttl: '10s',
        workers: 6,
        rounds: 3,
        holdMs: 20,
        counter,
        retry: { delay: 50, timeout: '60s' },
      },
      workers
    )
    assert.deepEqual(
      results.map(({ served, notServed, overLimit }) => ({ served, notServed, overLimit })),
      Array(3).fill({ served: 18, notServed: 0, overLimit: 0 })
    )
    assert.equal(Math.max(...results.map(({ peak }) => peak)), 3)
    assert.equal(await connection.get(counter), '0')
  })

  test('a holder paused past its ttl loses the {$self}: its signal aborts, the new holder keeps it')
    .with<Kind[]>(['lock', 'semaphore'])
    .run(async ({ assert, cleanup }, kind) => {
      const { locks, prefix } = await setupRedis(cleanup)
      const worker = await WorkerProcess.start<SemaphoreWorkerTask>(
        WORKER,
        {
          task: 'pause',
          backend: { redis: { port } },
          prefix,
          key: 'paused',
          ttl: 500,
          limit: kind === 'lock' ? undefined : 1,
          workMs: 30_000,
        },
        workers
      )
      worker.go()
      const next = holdable(locks, kind, 'paused', '20s')
      for (let attempt = 0; attempt < 400 && !(await next.isLocked()); attempt++) await sleep(25)
      assert.isTrue(await next.isLocked(), 'the worker holds it')

      /**
       * Stopped like a process in a long GC pause or a frozen VM: its
       * watchdog cannot extend, the ttl runs out and the key is taken
       */
      worker.signal('SIGSTOP')
      const stoppedAt = Date.now()
      try {
        assert.isTrue(await next.acquire({ retry: { delay: 50, timeout: '15s' } }))
        await sleep(1500 - (Date.now() - stoppedAt))
      } finally {
        worker.signal('SIGCONT')
      }

      const result = await worker.result<PauseResult>()
      assert.isTrue(result.ran)
      assert.isTrue(result.aborted, 'the signal aborted')
      assert.equal(result.reason?.code, 'E_LOCK_LOST')
      assert.include(result.events, 'lock:lost')
      assert.notInclude(result.events, 'lock:released')
      assert.isTrue(await next.isOwned(), 'the new holder keeps it')
      await next.release()
    })
})

test.group('Semaphores | a private Redis server restarting', (group) => {
  const binaries = redisBinariesAvailable()
  let server: RedisServer | undefined
  group.tap((t) => {
    t.skip(!binaries, 'redis-server is not installed')
    t.timeout(60_000)
  })
  group.each.teardown(async () => {
    await server?.destroy()
    server = undefined
  })

  test(
    'a restart during an autoExtend run loses the {$self} (no persistence): E_LOCK_LOST, lock:lost, no timer left'
  )
    .with<Kind[]>(['lock', 'semaphore'])
    .run(async ({ assert }, kind) => {
      server = await RedisServer.start()
      const connection = new Redis({ port: server.port, retryStrategy: () => 100 })
      connection.on('error', () => {})
      const store = new RedisStore({ connection })
      const emitter = new RecordingEmitter()
      const locks = new LockFactory(store, { prefix: 'private', emitter })
      try {
        await connection.ping()
        const before = timers()
        const lock = holdable(locks, kind, 'restarted', 1500)
        let taker: ReturnType<typeof holdable> | undefined
        let reason: unknown

        const [ran] = await lock.run(
          async ({ signal }) => {
            await server!.restart()
            /**
             * Without persistence the server came back empty: another
             * owner takes the key before the watchdog extends it
             */
            taker = holdable(locks, kind, 'restarted', '20s')
            assert.isTrue(await taker.acquireImmediately())
            await untilAborted(signal, 15_000)
            reason = signal.reason
          },
          { autoExtend: true }
        )

        assert.isTrue(ran)
        assert.instanceOf(reason, E_LOCK_LOST)
        assert.include(emitter.names(), 'lock:lost')
        assert.isTrue(await taker!.isOwned(), 'the lost run did not release the new holder')
        await taker!.release()
        await store.close()
        connection.disconnect()
        await server.stop()
        await assertWatchdogStopped(assert, emitter, before, 1500 / 3)
      } finally {
        await store.close()
        connection.disconnect()
      }
    })
})

for (const dialect of TEST_DIALECTS) {
  const label = DIALECT_LABELS[dialect]
  const available = await dialectAvailable(dialect)

  test.group(`Semaphores | database store (${label})`, (group) => {
    let database: TestDatabase
    let store: DatabaseStore
    group.tap((t) => {
      t.skip(!available, `${label} is not reachable`)
      t.timeout(30_000)
    })
    group.each.setup(async () => {
      database = await openTestDatabase(dialect)
      store = new DatabaseStore({ connection: database.client, tableName: database.tableName })
      return async () => {
        await store.close()
        await database.close()
      }
    })

    test('a semaphore is one row per slot, each a lock of its own', async ({ assert }) => {
      const locks = new LockFactory(store, { prefix: 'test' })
      const holders = [1, 2, 3].map(() => locks.createSemaphore('pool', 3, '10s'))
      for (const holder of holders) assert.isTrue(await holder.acquireImmediately())
      assert.isFalse(await locks.createSemaphore('pool', 3, '10s').acquireImmediately())

      const rows = await database.client.from(database.tableName).select('*').orderBy('key')
      const slots = rows.filter((row) => row.key !== 'test:pool#slots')
      assert.deepEqual(
        slots.map((row) => row.key),
        ['test:pool#slot0', 'test:pool#slot1', 'test:pool#slot2']
      )
      assert.sameMembers(
        slots.map((row) => row.owner),
        holders.map((holder) => holder.getOwner())
      )
      /**
       * One sequence of tokens for the semaphore, whichever slot they go
       * with; PostgreSQL and MySQL keep it in a row of its own, free
       */
      const [first, second, third] = holders.map((holder) => holder.fencingToken!)
      assert.isAbove(second, first)
      assert.isAbove(third, second)
      const sequence = rows.find((row) => row.key === 'test:pool#slots')
      if (sequence) {
        assert.isNull(sequence.owner)
        assert.equal(Number(sequence.fencing), third)
      }
      /**
       * A lock of the same name is another row
       */
      assert.isTrue(await locks.createLock('pool', '10s').acquireImmediately())
    })

    test('a refused slot tells how long until the first holder expires', async ({ assert }) => {
      await store.saveSlot('full', 'a', 2, 5000)
      await store.saveSlot('full', 'b', 2, 3000)
      const refused = await store.saveSlot('full', 'c', 2, 5000)
      assert.isFalse(refused.acquired)
      assert.isAbove(refused.retryAfter!, 2000)
      assert.isAtMost(refused.retryAfter!, 3000)

      await store.saveSlot('room', 'a', 5, 5000)
      const again = await store.saveSlot('room', 'a', 5, 5000)
      assert.isFalse(again.acquired)

      await store.saveSlot('forever', 'a', 1, null)
      assert.deepEqual(await store.saveSlot('forever', 'b', 1, 5000), {
        acquired: false,
        retryAfter: null,
      })
      assert.deepEqual(await store.slotOwners('forever', 1), ['a'])
    })

    test('keys too long for the column still get distinct slots', async ({ assert }) => {
      const locks = new LockFactory(store)
      const key = `reports.${'x'.repeat(600)}`
      const holders = [1, 2].map(() => locks.createSemaphore(key, 2, '10s'))
      for (const holder of holders) assert.isTrue(await holder.acquireImmediately())
      assert.isFalse(await locks.createSemaphore(key, 2, '10s').acquireImmediately())
      await holders[0].release()
      assert.isTrue(await locks.createSemaphore(key, 2, '10s').acquireImmediately())
      assert.isTrue(await holders[1].isOwned())
    })

    if (dialect === 'postgres') {
      test('every semaphore call is one statement', async ({ assert }) => {
        const knex = database.client.getWriteClient()
        const sent: string[] = []
        const record = (query: { sql: string }) => sent.push(query.sql)
        knex.on('query', record)
        try {
          const locks = new LockFactory(store, { prefix: 'test' })
          const semaphore = locks.createSemaphore('calls', 1, '10s')
          assert.isTrue(await semaphore.acquire())
          assert.isFalse(await locks.createSemaphore('calls', 1).acquireImmediately())
          assert.isTrue(await semaphore.isOwned())
          await semaphore.extend()
          await semaphore.release()
          await semaphore.forceRelease()
        } finally {
          knex.off('query', record)
        }
        assert.lengthOf(sent, 6)
      })
    }
  })
}

const postgresAvailable = await dialectAvailable('postgres')

test.group('Semaphores | PostgreSQL, several processes', (group) => {
  const workers: WorkerProcess[] = []
  let database: TestDatabase | undefined
  let counterTable: string
  group.tap((t) => {
    t.skip(!postgresAvailable, 'PostgreSQL is not reachable')
    t.timeout(120_000)
  })
  group.each.setup(async () => {
    database = await openTestDatabase('postgres')
    counterTable = uniqueName('holders')
    await database.client.schema.createTable(counterTable, (table) => {
      table.string('name').primary()
      table.integer('holders').notNullable()
    })
    await database.client.table(counterTable).insert({ name: 'pool', holders: 0 })
    return async () => {
      await Promise.all(workers.splice(0).map((worker) => worker.stop()))
      await database!.client.schema.dropTableIfExists(counterTable)
      await database!.close()
    }
  })

  test('3 processes x 6 workers on 3 slots: never more than 3 holders, 3 reached, all served', async ({
    assert,
  }) => {
    const results = await contend(
      3,
      {
        backend: {
          database: { config: database!.config, tableName: database!.tableName, counterTable },
        },
        prefix: 'test',
        key: 'pool',
        limit: 3,
        ttl: '20s',
        workers: 6,
        rounds: 3,
        holdMs: 20,
        counter: 'pool',
        retry: { delay: 100, timeout: '90s' },
      },
      workers
    )
    assert.deepEqual(
      results.map(({ served, notServed, overLimit }) => ({ served, notServed, overLimit })),
      Array(3).fill({ served: 18, notServed: 0, overLimit: 0 })
    )
    assert.equal(Math.max(...results.map(({ peak }) => peak)), 3)
    const [row] = await database!.client.from(counterTable).select('holders')
    assert.equal(row.holders, 0)
  })
})
