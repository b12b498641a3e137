import { test } from '@japa/runner'
import type { LockFactory } from '../lock_factory.ts'
import { sleep } from '../wait.ts'
import type { HandOverSuite } from './hand_over_conformance.ts'
import { LONG_DELAY, settlesInBound, untilFree, waitOnce, watchCalls } from './helpers.ts'

/**
 * A newcomer joins the line behind a waiter or a try in progress, and
 * tries on its own where what it would wait behind is gone
 */
export function registerHandOverNewcomerConformance({ current, factory }: HandOverSuite) {
  test('a newcomer queues behind a try in progress instead of racing it', async ({ assert }) => {
    const locks = factory()
    await waitOnce(locks)
    const calls = watchCalls(current.store).calls
    const order: string[] = []
    const retry = { delay: '30s', timeout: '15s' }
    await Promise.all(
      ['first', 'newcomer'].map(async (contender) => {
        const [ran] = await locks.createLock('queued', '10s').run(
          async () => {
            order.push(contender)
            await sleep(50)
          },
          { retry }
        )
        assert.isTrue(ran)
      })
    )
    assert.deepEqual(order, ['first', 'newcomer'])
    assert.equal(calls.saves, 1, 'the newcomer was handed the lock without a try of its own')
  })

  test('a newcomer behind a try that gave up tries on its own', async ({ assert }) => {
    const locks = factory()
    await waitOnce(locks)
    const holder = locks.createLock('given up', '10s')
    await holder.acquire()
    const calls = watchCalls(current.store).calls
    const tried = locks.createLock('given up').acquireImmediately()
    const newcomer = locks.createLock('given up', '10s')
    const waiting = newcomer.acquire({ retry: { delay: '30s', timeout: '15s' } })
    assert.isFalse(await tried)

    /**
     * Asleep behind the abandoned try, the newcomer would try only at
     * its timeout
     */
    for (let tick = 0; tick < 200 && calls.saves < 2; tick++) await sleep(10)
    assert.equal(calls.saves, 2, 'the newcomer tried on its own')
    await holder.release()
    assert.isTrue(await waiting)
    assert.equal(calls.saves, 2)
    await newcomer.release()
  })

  test('a newcomer behind a waiter that was aborted tries on its own', async ({ assert }) => {
    const locks = factory()
    await waitOnce(locks)
    const holder = locks.createLock('aborted ahead', '10s')
    await holder.acquire()
    const retry = { delay: '30s', timeout: '15s' }
    const controller = new AbortController()
    const first = locks
      .createLock('aborted ahead', '10s')
      .acquire({ retry, signal: controller.signal })
      .catch((error: unknown) => error)
    await sleep(100)
    const calls = watchCalls(current.store).calls
    const newcomer = locks.createLock('aborted ahead', '10s')
    const waiting = newcomer.acquire({ retry })
    await sleep(100)
    assert.equal(calls.saves, 0, 'the newcomer joined the line without a try')
    controller.abort(new Error('gave up'))
    assert.equal(((await first) as Error).message, 'gave up')

    /**
     * Asleep behind the waiter that left, the newcomer would try only
     * at its timeout
     */
    for (let tick = 0; tick < 200 && calls.saves < 1; tick++) await sleep(10)
    assert.equal(calls.saves, 1, 'the newcomer tried on its own')
    await holder.release()
    assert.isTrue(await waiting)
    await newcomer.release()
  })

  /**
   * A lock of `ttl` that the release of a holder of this process
   * hands over (after a first wait, so that the store has its waiters)
   */
  async function handedOver(locks: LockFactory, key: string, ttl: number) {
    await waitOnce(locks)
    const holder = locks.createLock(key, '10s')
    await holder.acquire()
    const handed = locks.createLock(key, ttl)
    const handing = handed.acquire({ retry: { delay: '30s' } })
    await sleep(100)
    await holder.release()
    return { handed, acquired: await handing }
  }

  test('a lock handed to a waiter that expires unreleased holds no newcomer back', async ({
    assert,
  }) => {
    const locks = factory()
    const { handed, acquired } = await handedOver(locks, 'expired here', 300)
    assert.isTrue(acquired)
    await untilFree(assert, current.store, handed.storeKey)

    /**
     * Believing the lock still held here, the newcomer would wait in
     * line until its timeout instead of trying
     */
    const newcomer = locks.createLock('expired here', '10s')
    const acquiring = newcomer.acquire({ retry: { delay: LONG_DELAY, timeout: '90s' } })
    assert.isTrue(await settlesInBound(acquiring), 'the newcomer waited in line')
    assert.isTrue(await acquiring)
    await newcomer.release()
  })

  test('a lock handed to a waiter and extended still holds newcomers in line', async ({
    assert,
  }) => {
    const locks = factory()
    const startedAt = performance.now()
    const { handed, acquired } = await handedOver(locks, 'extended here', 1500)
    assert.isTrue(acquired)
    await handed.extend('20s')
    await sleep(startedAt + 2000 - performance.now())

    /**
     * Past the handed lock's first ttl, but not its extension: the
     * newcomer joins the line rather than spend a refused try
     */
    const calls = watchCalls(current.store).calls
    const newcomer = locks.createLock('extended here', '10s')
    const waiting = newcomer.acquire({ retry: { delay: '30s', timeout: '15s' } })
    await sleep(100)
    assert.equal(calls.saves, 0, 'the newcomer spent a refused try')
    await handed.release()
    assert.isTrue(await waiting)
    await newcomer.release()
  })
}
