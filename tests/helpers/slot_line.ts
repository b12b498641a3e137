import type { Assert } from '@japa/assert'
import type { LockFactory } from '../../src/lock_factory.ts'
import { sleep } from '../../src/wait.ts'

/**
 * Semaphore waiters stand in a line of their own: a free lock of the same
 * key is taken at once, not after a retry delay behind them
 */
export async function assertFreeLockNotBehindSlotWaiters(assert: Assert, locks: LockFactory) {
  const semaphore = locks.createSemaphore('x', 1, '10s')
  assert.isTrue(await semaphore.acquire())
  const stop = new AbortController()
  const waiting = [1, 2].map(() =>
    locks
      .createSemaphore('x', 1, '10s')
      .acquire({ signal: stop.signal, retry: { delay: '10s' } })
      .catch(() => false)
  )
  await sleep(200)
  const startedAt = performance.now()
  const lock = locks.createLock('x', '10s')
  assert.isTrue(await lock.acquire({ retry: { delay: '10s', timeout: '15s' } }))
  const took = performance.now() - startedAt
  stop.abort()
  await Promise.all(waiting)
  await lock.release()
  await semaphore.release()
  assert.isBelow(took, 5000, 'the free lock waited a retry delay behind the semaphore waiters')
}
