/**
 * A process taking Redis locks for the multi-process tests. Started with a
 * JSON task as its argument, it prints `ready`, waits for `go` on stdin,
 * does the task and prints one JSON line with its result.
 *
 * Tasks:
 * - contend: `workers` concurrent loops take the lock `rounds` times each;
 *   inside, INCR/DECR of `counterKey` counts overlapping critical sections
 *   and the fencing token is appended to `tokensKey` (acquisition order)
 * - hold: acquires the lock and prints `lock.serialize()` before `ready`
 * - release: restores `serialized` and releases it
 */
import { createInterface } from 'node:readline'
import { Cluster, Redis } from 'ioredis'
import { LockFactory } from '../../src/lock_factory.ts'
import { RedisStore } from '../../src/stores/redis/redis_store.ts'
import type { RetryOptions, SerializedLock } from '../../src/types.ts'
import { sleep } from '../../src/wait.ts'

export interface WorkerTask {
  task: 'contend' | 'hold' | 'release'
  redis: { port: number } | { cluster: Array<{ host: string; port: number }> }
  prefix: string
  key: string
  ttl?: number | string | null
  workers?: number
  rounds?: number
  holdMs?: number
  counterKey?: string
  tokensKey?: string
  retry?: RetryOptions
  serialized?: SerializedLock
}

export interface ContendResult {
  served: number
  notServed: number
  overlaps: number
  elapsed: number
}

const task = JSON.parse(process.argv[2]) as WorkerTask
const connection =
  'cluster' in task.redis
    ? new Cluster(task.redis.cluster)
    : new Redis({ host: '127.0.0.1', port: task.redis.port })
const store = new RedisStore({ connection })
const locks = new LockFactory(store, { prefix: task.prefix, storeName: 'redis' })
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

async function waitForGo() {
  const { value } = await lines.next()
  if (value !== 'go') throw new Error(`expected "go", got ${JSON.stringify(value)}`)
}

async function contend(): Promise<ContendResult> {
  const result: ContendResult = { served: 0, notServed: 0, overlaps: 0, elapsed: 0 }
  const startedAt = Date.now()
  await Promise.all(
    Array.from({ length: task.workers ?? 1 }, async () => {
      for (let round = 0; round < (task.rounds ?? 1); round++) {
        const lock = locks.createLock(task.key, task.ttl)
        const [ran] = await lock.run(
          async ({ fencingToken }) => {
            if ((await connection.incr(task.counterKey!)) !== 1) result.overlaps++
            await connection.rpush(task.tokensKey!, String(fencingToken))
            await sleep(task.holdMs ?? 0)
            await connection.decr(task.counterKey!)
          },
          { retry: task.retry }
        )
        if (ran) result.served++
        else result.notServed++
      }
    })
  )
  result.elapsed = Date.now() - startedAt
  return result
}

try {
  await connection.ping()
  let output: unknown
  if (task.task === 'contend') {
    console.log('ready')
    await waitForGo()
    output = await contend()
  } else if (task.task === 'hold') {
    const lock = locks.createLock(task.key, task.ttl)
    if (!(await lock.acquireImmediately())) throw new Error('the lock to hold is taken')
    console.log('ready')
    await waitForGo()
    output = lock.serialize()
  } else {
    const lock = locks.restoreLock(task.serialized!)
    console.log('ready')
    await waitForGo()
    const owned = await lock.isOwned()
    await lock.release()
    output = { owned, fencingToken: lock.fencingToken }
  }
  console.log(JSON.stringify(output))
} finally {
  await store.close()
  connection.disconnect()
  process.stdin.destroy()
}
