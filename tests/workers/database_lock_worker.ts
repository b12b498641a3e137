/**
 * A process taking database locks for the multi-process tests. Started
 * with a JSON task as its argument, it prints `ready`, waits for `go` on
 * stdin (except `wait`), does the task and prints one JSON line with its
 * result.
 *
 * Tasks:
 * - contend: `workers` concurrent loops take the lock `rounds` times each.
 *   Inside, creating `markerFile` exclusively detects overlapping critical
 *   sections across processes, and the fencing token is appended to
 *   `tokensFile` (acquisition order)
 * - hold: acquires the lock (prints `lock.serialize()` after `go`)
 * - probe: one acquire attempt by a new owner, without taking a free lock
 *   for long: reports the store's answer and `isLocked()`
 * - release: restores `serialized` and releases it
 * - wait: fails a first try, prints `ready`, then waits for the lock with a
 *   long poll delay and reports when it got it
 */
import { appendFile, open, unlink } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import knex from 'knex'
import { LockFactory } from '../../src/lock_factory.ts'
import { DatabaseStore } from '../../src/stores/database/database_store.ts'
import type { AcquireResult, RetryOptions, SerializedLock } from '../../src/types.ts'
import { sleep } from '../../src/wait.ts'

export interface DatabaseWorkerTask {
  task: 'contend' | 'hold' | 'probe' | 'release' | 'wait'
  config: Record<string, any>
  tableName: string
  prefix: string
  key: string
  ttl?: number | string | null
  workers?: number
  rounds?: number
  holdMs?: number
  markerFile?: string
  tokensFile?: string
  retry?: RetryOptions
  serialized?: SerializedLock
}

export interface ContendResult {
  served: number
  notServed: number
  overlaps: number
}

export interface ProbeResult {
  result: AcquireResult
  isLocked: boolean
  /**
   * `Date.now()` of the worker, to check its clock is the shifted one
   */
  now: number
}

const task = JSON.parse(process.argv[2]) as DatabaseWorkerTask
const connection = knex(task.config)
const store = new DatabaseStore({ connection, tableName: task.tableName })
const locks = new LockFactory(store, { prefix: task.prefix, storeName: 'database' })
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

async function waitForGo() {
  const { value } = await lines.next()
  if (value !== 'go') throw new Error(`expected "go", got ${JSON.stringify(value)}`)
}

async function criticalSection(fencingToken: number | null, result: ContendResult) {
  let marker
  try {
    marker = await open(task.markerFile!, 'wx')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    result.overlaps++
  }
  try {
    await appendFile(task.tokensFile!, `${fencingToken}\n`)
    await sleep(task.holdMs ?? 0)
  } finally {
    if (marker) {
      await marker.close()
      await unlink(task.markerFile!)
    }
  }
}

async function contend(): Promise<ContendResult> {
  const result: ContendResult = { served: 0, notServed: 0, overlaps: 0 }
  await Promise.all(
    Array.from({ length: task.workers ?? 1 }, async () => {
      for (let round = 0; round < (task.rounds ?? 1); round++) {
        const [ran] = await locks
          .createLock(task.key, task.ttl)
          .run(({ fencingToken }) => criticalSection(fencingToken, result), { retry: task.retry })
        if (ran) result.served++
        else result.notServed++
      }
    })
  )
  return result
}

try {
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
  } else if (task.task === 'probe') {
    console.log('ready')
    await waitForGo()
    const lock = locks.createLock(task.key, task.ttl)
    const result = await store.save(lock.storeKey, lock.getOwner(), 1000)
    output = { result, isLocked: await lock.isLocked(), now: Date.now() } satisfies ProbeResult
  } else if (task.task === 'release') {
    const lock = locks.restoreLock(task.serialized!)
    console.log('ready')
    await waitForGo()
    const owned = await lock.isOwned()
    await lock.release()
    output = { owned, fencingToken: lock.fencingToken }
  } else {
    const lock = locks.createLock(task.key, task.ttl)
    if (await lock.acquireImmediately()) throw new Error('the lock to wait for is free')
    console.log('ready')
    const acquired = await lock.acquire({ retry: task.retry })
    output = { acquired, at: Date.now() }
    if (acquired) await lock.release()
  }
  console.log(JSON.stringify(output))
} finally {
  await store.close()
  await connection.destroy()
  process.stdin.destroy()
}
