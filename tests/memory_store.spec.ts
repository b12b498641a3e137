import { test } from '@japa/runner'
import { registerStoreSuite } from './store_suite.ts'
import { LockFactory } from '../src/lock_factory.ts'
import { MemoryStore } from '../src/stores/main.ts'
import { sleep } from '../src/wait.ts'

registerStoreSuite('Memory store', {
  createStore: () => new MemoryStore(),
  processLocal: true,
})

test.group('Memory store | fencing tokens', () => {
  test('tokens start at the time in µs, so a restarted process never repeats one', async ({
    assert,
  }) => {
    const before = Date.now() * 1000
    const first = new LockFactory(new MemoryStore()).createLock('token', '10s')
    assert.isTrue(await first.acquire())
    assert.isAtLeast(first.fencingToken!, before)
    /**
     * A new store stands for the process restarted, a ms later
     */
    await sleep(2)
    const restarted = new LockFactory(new MemoryStore()).createLock('token', '10s')
    assert.isTrue(await restarted.acquire())
    assert.isAbove(restarted.fencingToken!, first.fencingToken!)
  })
})

test.group('Memory store | a lock and a semaphore of one key', () => {
  test('a free lock is taken at once while semaphore waiters of the same key wait', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore())
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
    /**
     * Behind the semaphore waiters it would wait its whole retry delay
     */
    const startedAt = performance.now()
    const lock = locks.createLock('x', '10s')
    assert.isTrue(await lock.acquire({ retry: { delay: '10s', timeout: '15s' } }))
    const took = performance.now() - startedAt
    stop.abort()
    await Promise.all(waiting)
    await lock.release()
    await semaphore.release()
    assert.isBelow(took, 5000, 'the free lock waited a retry delay behind the semaphore waiters')
  }).timeout(30_000)
})
