/**
 * Hostile input: every entry of the bad-input matrix gets its documented
 * error, never a raw TypeError, never a hang; waiting always ends; and
 * odd but valid keys work the same on every store.
 */
import { test } from '@japa/runner'
import { Redis } from 'ioredis'
import { E_LOCK_STORAGE_ERROR } from '../../src/errors.ts'
import { STORE_ANSWER_GRACE } from '../../src/wait.ts'
import { LockFactory } from '../../src/lock_factory.ts'
import { LockManager } from '../../src/lock_manager.ts'
import { DatabaseStore } from '../../src/stores/database/database_store.ts'
import { MemoryStore } from '../../src/stores/memory.ts'
import { RedisStore } from '../../src/stores/redis/redis_store.ts'
import type { LockStore, StoreFactory } from '../../src/types.ts'
import { settleWithin, sleep } from '../../src/wait.ts'
import { openTestDatabase, type TestDatabase } from '../helpers/databases.ts'
import { sparePort } from '../helpers/redis_servers.ts'
import { SERVICES, serviceAvailable, uniqueKey } from '../helpers/services.ts'
import { BAD_INPUTS, type BadInput, type BadInputContext } from './helpers/bad_inputs.ts'
import { count } from './helpers/figures.ts'

/**
 * Longer than any entry needs (the slowest waits for a refused connection)
 */
const HANG_MS = 8000

const services = {
  redis: await serviceAvailable('redis'),
  postgres: await serviceAvailable('postgres'),
  mariadb: await serviceAvailable('mariadb'),
}

/**
 * The error an entry got, or why it is not the documented one
 */
async function problemOf(entry: BadInput, context: BadInputContext): Promise<string | null> {
  const expected = (entry.error as unknown as { code: string }).code
  const outcome = await settleWithin(
    Promise.resolve()
      .then(() => entry.run(context))
      .then(
        () => ({ error: null }),
        (error: unknown) => ({ error })
      ),
    HANG_MS
  )
  if (!outcome) return `${entry.input}: no answer within ${HANG_MS} ms instead of ${expected}`
  const { error } = outcome
  if (error === null) return `${entry.input}: accepted instead of ${expected}`
  if (error instanceof entry.error) return null
  const name = error instanceof Error ? `${error.name} ${error.message}` : String(error)
  return `${entry.input}: ${name} instead of ${expected}`
}

const byApi = Map.groupBy(BAD_INPUTS, (entry) => entry.api)

test.group('Reliability | bad-input matrix', (group) => {
  let context: BadInputContext
  let database: TestDatabase | undefined
  const closers: Array<() => Promise<void> | void> = []

  group.setup(async () => {
    const locks = new LockFactory(new MemoryStore(), { storeName: 'memory' })
    const holder = locks.createLock(uniqueKey('held'), '1m')
    await holder.acquire()
    const manager: LockManager = new LockManager<Record<string, StoreFactory>>({
      default: 'memory',
      stores: { memory: { driver: { factory: () => locks.store } } },
    })
    context = { locks, manager, serialized: holder.serialize(), closedPort: await sparePort() }
    if (services.redis) {
      const redis = new Redis(SERVICES.redis.port, '127.0.0.1')
      closers.push(() => redis.disconnect())
      context.redis = redis
    }
    if (services.postgres) {
      database = await openTestDatabase('postgres')
      closers.push(() => database!.close())
      context.postgres = { knex: database.client.getWriteClient(), tableName: database.tableName }
    }
    return async () => {
      for (const close of closers) await close()
    }
  })

  for (const [api, entries] of byApi) {
    const needs = entries[0].needs
    const knownGap = entries.find((entry) => entry.knownGap)?.knownGap
    const check = test(`${api}: ${entries.length} bad inputs, each its documented error`, async ({
      assert,
    }) => {
      const problems: string[] = []
      for (const entry of entries) {
        const problem = await problemOf(entry, context)
        if (problem) problems.push(problem)
      }
      count('badInputCases', entries.length)
      assert.deepEqual(problems, [])
    })
      .skip(needs !== undefined && !services[needs], `${needs} is not reachable`)
      .timeout(HANG_MS * entries.length)
    if (knownGap) check.fails(knownGap)
  }
})

test.group('Reliability | waiting always ends', () => {
  async function heldKey() {
    const locks = new LockFactory(new MemoryStore())
    const key = uniqueKey('busy')
    await locks.createLock(key, '1m').acquire()
    return { locks, key }
  }

  test('an aborted signal rejects with its reason, before or while waiting', async ({ assert }) => {
    const { locks, key } = await heldKey()
    const reason = new Error('client went away')
    await assert.rejects(
      () => locks.createLock(key).acquire({ signal: AbortSignal.abort(reason) }),
      'client went away'
    )
    const controller = new AbortController()
    const waiting = locks.createLock(key).acquire({ signal: controller.signal })
    setTimeout(() => controller.abort(reason), 50)
    const failure = await settleWithin(
      waiting.catch((error) => error),
      HANG_MS
    )
    assert.strictEqual(failure, reason)
    count('badInputCases', 2)
  })

  test('attempts and timeouts end a wait on a lock that is never released', async ({ assert }) => {
    const { locks, key } = await heldKey()
    for (const retry of [
      { attempts: 0 },
      { attempts: 1 },
      { attempts: 3, delay: 10 },
      { timeout: 0 },
      { timeout: 100 },
      { timeout: '100ms', delay: '1h' },
    ]) {
      const startedAt = Date.now()
      const acquired = await settleWithin(locks.createLock(key).acquire({ retry }), HANG_MS)
      assert.isFalse(acquired, JSON.stringify(retry))
      assert.isBelow(Date.now() - startedAt, HANG_MS)
    }
    count('badInputCases', 6)
  })

  test('a store that does not answer fails a timed acquire; what it took late is released', async ({
    assert,
  }) => {
    const store = new MemoryStore()
    let answer: (() => void) | undefined
    const stalled: LockStore = {
      save: (key, owner, ttl) =>
        new Promise((resolve) => (answer = () => resolve(store.save(key, owner, ttl)))),
      delete: (key, owner) => store.delete(key, owner),
      forceDelete: (key) => store.forceDelete(key),
      exists: (key) => store.exists(key),
      extend: (key, owner, duration) => store.extend(key, owner, duration),
    }
    const key = uniqueKey('stalled')
    const lock = new LockFactory(stalled).createLock(key, '1m')
    const startedAt = Date.now()
    await assert.rejects(
      () => lock.acquire({ retry: { timeout: 100 } }),
      E_LOCK_STORAGE_ERROR as any
    )
    assert.isBelow(Date.now() - startedAt, STORE_ANSWER_GRACE + HANG_MS)

    answer!()
    for (let attempt = 0; attempt < 100 && (await store.exists(key)); attempt++) await sleep(10)
    assert.isFalse(await store.exists(key), 'the late acquisition is still held')
    count('badInputCases')
  })
})

/**
 * Keys at the edges of what is valid, which every store must keep apart
 * and handle alike
 */
const EDGE_KEYS: Array<[string, string]> = [
  ['1024 ASCII bytes', 'k'.repeat(1024)],
  ["'é' × 512 (1024 bytes)", 'é'.repeat(512)],
  ['emoji × 256 (1024 bytes)', '😀'.repeat(256)],
  ['hash-tag braces', '{a}b}{'],
  ['whitespace and newlines', ' a \n\t b '],
  ['glob and LIKE characters', '%_*?[]\\'],
  ['SQL quotes', '\'; DROP TABLE locks; --"'],
]

interface EdgeStore {
  label: string
  available: boolean
  open(): Promise<{ store: LockStore; close(): Promise<void> }>
}

const EDGE_STORES: EdgeStore[] = [
  {
    label: 'memory',
    available: true,
    async open() {
      return { store: new MemoryStore(), close: async () => {} }
    },
  },
  {
    label: 'Redis',
    available: services.redis,
    async open() {
      const redis = new Redis(SERVICES.redis.port, '127.0.0.1')
      const store = new RedisStore({ connection: redis })
      return {
        store,
        async close() {
          await store.close()
          redis.disconnect()
        },
      }
    },
  },
  ...(['postgres', 'mysql', 'sqlite'] as const).map((dialect): EdgeStore => ({
    label: { postgres: 'PostgreSQL', mysql: 'MariaDB', sqlite: 'SQLite' }[dialect],
    available: { postgres: services.postgres, mysql: services.mariadb, sqlite: true }[dialect],
    async open() {
      const database = await openTestDatabase(dialect)
      const store = new DatabaseStore({
        connection: database.client,
        tableName: database.tableName,
      })
      return {
        store,
        async close() {
          await store.close()
          await database.close()
        },
      }
    },
  })),
]

test.group('Reliability | odd but valid keys', () => {
  for (const edge of EDGE_STORES) {
    test(`${edge.label}: ${EDGE_KEYS.length} edge keys are locked, kept apart and released`, async ({
      assert,
      cleanup,
    }) => {
      const { store, close } = await edge.open()
      cleanup(close)
      const locks = new LockFactory(store, { prefix: uniqueKey('edge') })
      const problems: string[] = []
      for (const [label, key] of EDGE_KEYS) {
        try {
          const lock = locks.createLock(key, '10s')
          const other = locks.createLock(key, '10s')
          const sibling = locks.createLock(`${[...key].slice(0, -1).join('')}~`, '10s')
          if (!(await lock.acquire({ retry: { attempts: 1 } }))) problems.push(`${label}: refused`)
          if (await other.acquireImmediately()) problems.push(`${label}: taken twice`)
          if (!(await sibling.acquireImmediately())) problems.push(`${label}: not kept apart`)
          if (!(await lock.isOwned())) problems.push(`${label}: not owned`)
          await lock.release()
          await sibling.release()
        } catch (error) {
          problems.push(`${label}: ${(error as Error).message.slice(0, 160)}`)
        }
      }
      count('badInputCases', EDGE_KEYS.length)
      assert.deepEqual(problems, [])
    })
      .skip(!edge.available, `${edge.label} is not reachable`)
      .timeout(30_000)
  }
})
