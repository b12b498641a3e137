/**
 * A process taking semaphores (and locks) for the multi-process tests, on
 * Redis or a database. Started with a JSON task as its argument, it prints
 * `ready`, waits for `go` on stdin, does the task and prints one JSON line
 * with its result.
 *
 * Tasks:
 * - contend: `workers` concurrent loops take a slot of the semaphore
 *   `rounds` times each. Inside, a counter shared by every process (a
 *   Redis INCR/DECR, or an UPDATE ... RETURNING of a database row) counts
 *   the holders at that moment; the highest count seen is reported.
 * - pause: runs a lock (or a 1-slot semaphore) with autoExtend and works
 *   until its signal aborts (at most `workMs`); the test SIGSTOPs this
 *   process meanwhile. Reports how the signal ended and the events seen.
 */
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import { LockFactory } from '../../src/lock_factory.ts'
import { RedisStore } from '../../src/stores/redis/redis_store.ts'
import type { LockStore, RetryOptions } from '../../src/types.ts'
import { sleep } from '../../src/wait.ts'
import { RecordingEmitter } from '../helpers/recording_emitter.ts'

export type SemaphoreBackend =
  | { redis: { port: number } }
  | { database: { config: Record<string, any>; tableName: string; counterTable: string } }

export interface SemaphoreWorkerTask {
  task: 'contend' | 'pause'
  backend: SemaphoreBackend
  prefix: string
  key: string
  ttl?: number | string | null
  /**
   * contend: slots of the semaphore. pause: absent for a lock, else the
   * semaphore's limit.
   */
  limit?: number
  workers?: number
  rounds?: number
  holdMs?: number
  /**
   * The Redis key, or the row of `counterTable`, counting holders
   */
  counter?: string
  retry?: RetryOptions
  workMs?: number
}

export interface SemaphoreContendResult {
  served: number
  notServed: number
  /**
   * Most holders seen at once, across every process
   */
  peak: number
  /**
   * Times a holder saw more than `limit` holders
   */
  overLimit: number
}

export interface PauseResult {
  ran: boolean
  aborted: boolean
  reason: { name: string; code: string; message: string } | null
  events: string[]
}

const task = JSON.parse(process.argv[2]) as SemaphoreWorkerTask
const emitter = new RecordingEmitter()

interface Backend {
  store: LockStore
  /**
   * Adds `delta` to the shared holder counter and returns the new value
   */
  count(delta: 1 | -1): Promise<number>
  close(): Promise<void>
}

async function openBackend(): Promise<Backend> {
  if ('redis' in task.backend) {
    const connection = new Redis({ host: '127.0.0.1', port: task.backend.redis.port })
    await connection.ping()
    const store = new RedisStore({ connection })
    return {
      store,
      count: (delta) =>
        delta === 1 ? connection.incr(task.counter!) : connection.decr(task.counter!),
      async close() {
        await store.close()
        connection.disconnect()
      },
    }
  }
  /**
   * Loaded only here, so the Redis tasks do not depend on the database store
   */
  const { config, tableName, counterTable } = task.backend.database
  const { default: knex } = await import('knex')
  const { DatabaseStore } = await import('../../src/stores/database/database_store.ts')
  const connection = knex(config)
  const store = new DatabaseStore({ connection, tableName })
  return {
    store,
    async count(delta) {
      const [row] = await connection(counterTable)
        .where('name', task.counter!)
        .increment('holders', delta)
        .returning('holders')
      return Number(row.holders)
    },
    async close() {
      await store.close()
      await connection.destroy()
    },
  }
}

async function contend(locks: LockFactory, backend: Backend): Promise<SemaphoreContendResult> {
  const result: SemaphoreContendResult = { served: 0, notServed: 0, peak: 0, overLimit: 0 }
  await Promise.all(
    Array.from({ length: task.workers ?? 1 }, async () => {
      for (let round = 0; round < (task.rounds ?? 1); round++) {
        const [ran] = await locks.createSemaphore(task.key, task.limit!, task.ttl).run(
          async () => {
            const holders = await backend.count(1)
            result.peak = Math.max(result.peak, holders)
            if (holders > task.limit!) result.overLimit++
            try {
              await sleep(task.holdMs ?? 0)
            } finally {
              await backend.count(-1)
            }
          },
          { retry: task.retry }
        )
        if (ran) result.served++
        else result.notServed++
      }
    })
  )
  return result
}

async function pause(locks: LockFactory): Promise<PauseResult> {
  const lock =
    task.limit === undefined
      ? locks.createLock(task.key, task.ttl)
      : locks.createSemaphore(task.key, task.limit, task.ttl)
  let aborted = false
  let reason: unknown = null
  const [ran] = await lock.run(
    async ({ signal }) => {
      const deadline = Date.now() + (task.workMs ?? 15_000)
      /**
       * Work in small steps, as a job checking its signal would
       */
      while (!signal.aborted && Date.now() < deadline) await sleep(20)
      aborted = signal.aborted
      reason = signal.reason ?? null
    },
    { autoExtend: true, retry: task.retry }
  )
  const error = reason as { name?: string; code?: string; message?: string } | null
  return {
    ran,
    aborted,
    reason: error
      ? { name: String(error.name), code: String(error.code), message: String(error.message) }
      : null,
    events: emitter.names(),
  }
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const backend = await openBackend()
try {
  const locks = new LockFactory(backend.store, {
    prefix: task.prefix,
    storeName: 'semaphores',
    emitter,
  })
  console.log('ready')
  const { value } = await lines.next()
  if (value !== 'go') throw new Error(`expected "go", got ${JSON.stringify(value)}`)
  const output = task.task === 'contend' ? await contend(locks, backend) : await pause(locks)
  console.log(JSON.stringify(output))
} finally {
  await backend.close()
  process.stdin.destroy()
}
