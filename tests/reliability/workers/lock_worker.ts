/**
 * A process contending for one lock, for the kill tests. Started with a
 * JSON task as its argument; prints JSON lines on stdout:
 *
 * - `{ type: 'ready' }` once its store answers; it then waits for `go`
 * - `{ type: 'acquired', pid, at, expiresAt, token }` when it holds the
 *   lock (`expiresAt`: the lock's own view of its expiry, which the store's
 *   is never before)
 * - `{ type: 'releasing', pid, at }` as its critical section ends
 * - `{ type: 'failed', pid, at, code }` when a try ends without the lock
 *
 * Each critical section lasts `holdMs`, and until stdin says `ack`: the
 * test acks every acquisition but the one whose holder it kills, so the
 * kill surely lands in the middle of a critical section. It loops until
 * stdin says `stop` (or closes), then exits 0.
 */
import { createInterface } from 'node:readline'
import { LockFactory } from '../../../src/lock_factory.ts'
import type { RetryOptions } from '../../../src/types.ts'
import { sleep } from '../../../src/wait.ts'
import { openBackend, type BackendSpec } from '../helpers/backends.ts'

export interface LockWorkerTask {
  backend: BackendSpec
  key: string
  ttl: number
  holdMs: number
  retry: RetryOptions
}

export type WorkerEvent =
  | { type: 'ready'; pid: number }
  | { type: 'acquired'; pid: number; at: number; expiresAt: number; token: number | null }
  | { type: 'releasing'; pid: number; at: number }
  | { type: 'failed'; pid: number; at: number; code: string }

const task = JSON.parse(process.argv[2]) as LockWorkerTask
const backend = openBackend(task.backend)
const locks = new LockFactory(backend.store, { prefix: 'reliability', storeName: 'worker' })
const report = (event: WorkerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`)

let stopping = false
let go: () => void
const started = new Promise<void>((resolve) => (go = resolve))
let acked = Promise.withResolvers<void>()
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line === 'go') go()
    if (line === 'ack') acked.resolve()
    if (line === 'stop') stopping = true
  })
  .on('close', () => {
    stopping = true
    go()
    acked.resolve()
  })

try {
  await backend.store.exists(`reliability:${task.key}`)
  report({ type: 'ready', pid: process.pid })
  await started
  while (!stopping) {
    const lock = locks.createLock(task.key, task.ttl)
    let acquired = false
    try {
      acquired = await lock.acquire({ retry: task.retry })
    } catch (error) {
      report({ type: 'failed', pid: process.pid, at: Date.now(), code: codeOf(error) })
      await sleep(50)
      continue
    }
    if (!acquired) {
      report({ type: 'failed', pid: process.pid, at: Date.now(), code: 'timeout' })
      continue
    }
    report({
      type: 'acquired',
      pid: process.pid,
      at: Date.now(),
      expiresAt: lock.serialize().expirationTime!,
      token: lock.fencingToken,
    })
    await Promise.all([sleep(task.holdMs), acked.promise])
    if (!stopping) acked = Promise.withResolvers<void>()
    report({ type: 'releasing', pid: process.pid, at: Date.now() })
    await lock.release()
  }
} finally {
  await backend.close()
  process.stdin.destroy()
}

function codeOf(error: unknown): string {
  return (error as { code?: string })?.code ?? String(error)
}
