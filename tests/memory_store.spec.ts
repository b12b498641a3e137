import { assertFreeLockNotBehindSlotWaiters } from './helpers/slot_line.ts'
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
    await assertFreeLockNotBehindSlotWaiters(assert, locks)
  }).timeout(30_000)
})
