import { test } from '@japa/runner'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import { LockFactory } from '../lock_factory.ts'
import { sleep } from '../wait.ts'
import type { HandOverSuite } from './hand_over_conformance.ts'
import { RecordingEmitter, watchCalls } from './helpers.ts'

/**
 * A release hands the lock to the waiters of its process one after the
 * other, and only a release by the owner hands it at all
 */
export function registerHandOverLineConformance({
  current,
  factory,
  peerOf,
  fencing,
  wakesOtherProcesses,
}: HandOverSuite) {
  /**
   * Three waiters line up behind a holder of this process or of another
   * one (a peer store on the same keys), then each passes the lock on
   */
  const holders = wakesOtherProcesses ? ['this process', 'another process'] : ['this process']
  for (const holderIn of holders) {
    test(`a release in ${holderIn} starts a line of waiters that are handed the lock in arrival order`, async ({
      assert,
    }) => {
      const peer = holderIn === 'another process' ? await peerOf() : undefined
      try {
        const emitter = new RecordingEmitter()
        const locks = new LockFactory(current.store, { prefix: current.prefix, emitter })
        const holder = new LockFactory(peer?.store ?? current.store, {
          prefix: current.prefix,
          emitter,
        }).createLock('handed', '10s')
        await holder.acquire()
        /**
         * A first wait opens the store's release subscription, and waking
         * everyone once it is in place would add tries
         */
        assert.isFalse(
          await locks.createLock('handed').acquire({ retry: { delay: 100, timeout: 300 } })
        )
        const calls = watchCalls(current.store).calls

        const order: number[] = []
        const tokens: Array<number | null> = [holder.fencingToken]
        const waiters = [1, 2, 3].map(async (id) => {
          await sleep(id * 100)
          const lock = locks.createLock('handed', '10s')
          assert.isTrue(await lock.acquire({ retry: { delay: '30s', timeout: '15s' } }))
          order.push(id)
          tokens.push(lock.fencingToken)
          assert.isTrue(await lock.isOwned())
          assert.isAbove(lock.getRemainingTime()!, 8000)
          await sleep(50)
          await lock.release()
        })
        await sleep(500)
        await holder.release()
        await Promise.all(waiters)

        assert.deepEqual(order, [1, 2, 3])
        /**
         * The first waiter tried on arrival; the other two queued behind it.
         * A release of this process handed the lock to the first waiter; one
         * of another process woke it alone (no herd), and it tried once more.
         * Each waiter's release then handed the lock to the next.
         */
        assert.equal(calls.saves, holderIn === 'this process' ? 1 : 2)
        assert.equal(emitter.names().filter((event) => event === 'lock:acquired').length, 4)
        if (fencing) {
          for (let index = 1; index < tokens.length; index++) {
            assert.isAbove(tokens[index]!, tokens[index - 1]!)
          }
        }
        assert.isFalse(await holder.isLocked())
      } finally {
        await peer?.close()
      }
    })
  }

  test('a lock handed to a waiter that gave up meanwhile is released', async ({ assert }) => {
    const locks = factory()
    const holder = locks.createLock('abandoned')
    await holder.acquire()
    const controller = new AbortController()
    const outcome = locks
      .createLock('abandoned')
      .acquire({ signal: controller.signal, retry: { delay: '30s' } })
      .then(
        () => 'acquired',
        (error: Error) => error.message
      )
    await sleep(200)

    /**
     * The release takes the waiter out of line at once; the abort lands
     * while the lock is on its way to it
     */
    const releasing = holder.release()
    controller.abort(new Error('gave up'))
    await releasing
    assert.equal(await outcome, 'gave up')

    let locked = true
    for (let tick = 0; tick < 200 && locked; tick++) {
      locked = await holder.isLocked()
      if (locked) await sleep(10)
    }
    assert.isFalse(locked, 'the lock stayed with the waiter that left')
    assert.isTrue(await locks.createLock('abandoned', '10s').acquireImmediately())
  })

  test('a release by a non-owner hands nothing over, and the waiter still gets the lock', async ({
    assert,
  }) => {
    const locks = factory()
    const holder = locks.createLock('impostor', '10s')
    await holder.acquire()
    const waiter = locks.createLock('impostor', '10s')
    const waiting = waiter.acquire({ retry: { delay: '30s', timeout: '15s' } })
    await sleep(200)

    const impostor = locks.restoreLock({ ...holder.serialize(), owner: 'someone else' })
    await assert.rejects(() => impostor.release(), E_LOCK_NOT_OWNED as any)
    assert.isTrue(await holder.isOwned())

    await holder.release()
    assert.isTrue(await waiting)
    assert.isTrue(await waiter.isOwned())
    await waiter.release()
  })
}
