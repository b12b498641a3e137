import { test } from '@japa/runner'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import { LockFactory } from '../lock_factory.ts'
import { sleep } from '../wait.ts'
import { LONG_DELAY, assertServedAfterRelease, crowd, storePerTest } from './helpers.ts'
import type { StoreSuiteOptions } from './store_suite.ts'

/**
 * For a store that implements SemaphoreStore
 */
export function registerSemaphoreConformance(
  name: string,
  options: StoreSuiteOptions,
  skip: string | false
) {
  const { fencing = true, semaphores = true, wakesOnRelease = true } = options

  test.group(`${name} | semaphore conformance`, (group) => {
    const current = storePerTest(group, options, skip || (!semaphores && 'no semaphores'), 30_000)

    const factory = () =>
      new LockFactory(current.store, { prefix: current.prefix, storeName: 'suite' })

    test('admits up to limit owners, then refuses until a slot is released', async ({ assert }) => {
      const locks = factory()
      const holders = [1, 2, 3].map(() => locks.createSemaphore('pool', 3, '10s'))
      for (const holder of holders) assert.isTrue(await holder.acquireImmediately())
      const fourth = locks.createSemaphore('pool', 3, '10s')
      assert.isFalse(await fourth.acquireImmediately())
      assert.isTrue(await fourth.isFull())
      assert.isTrue(await fourth.isLocked())
      assert.isFalse(await fourth.isOwned())
      assert.isTrue(await holders[1].isOwned())

      await holders[1].release()
      assert.isFalse(await fourth.isFull())
      assert.isTrue(await fourth.acquireImmediately())
      await assert.rejects(() => holders[1].release(), E_LOCK_NOT_OWNED as any)
    })

    test('slots expire, extend, and a non-owner cannot release', async ({ assert }) => {
      const locks = factory()
      const short = locks.createSemaphore('slots', 1, '1s')
      const other = locks.createSemaphore('slots', 1, '10s')
      await short.acquire()
      const acquiredAt = performance.now()
      await assert.rejects(() => other.release(), E_LOCK_NOT_OWNED as any)
      await assert.rejects(() => other.extend(), E_LOCK_NOT_OWNED as any)
      await short.extend(2000)

      /**
       * Past the first ttl, held by the extension; then free once it ends
       */
      await sleep(acquiredAt + 1200 - performance.now())
      assert.isFalse(await other.acquireImmediately())
      let taken = false
      for (let tick = 0; tick < 500 && !taken; tick++) {
        taken = await other.acquireImmediately()
        if (!taken) await sleep(30)
      }
      assert.isTrue(taken, 'the extended slot never expired')
      await assert.rejects(() => short.release(), E_LOCK_NOT_OWNED as any)
    })

    test('forceRelease frees every slot; serialize keeps the limit', async ({ assert }) => {
      const locks = factory()
      const first = locks.createSemaphore('force', 2, '10s')
      await first.acquire()
      await locks.createSemaphore('force', 2, '10s').acquire()

      const restored = locks.restoreLock(JSON.parse(JSON.stringify(first.serialize())))
      assert.equal((restored as any).limit, 2)
      assert.isTrue(await restored.isOwned())

      await locks.createSemaphore('force', 2).forceRelease()
      assert.isFalse(await first.isLocked())
    })

    test('a waiter gets a slot once a holder releases it', async ({ assert }) => {
      const locks = factory()
      const holder = locks.createSemaphore('wake', 1, LONG_DELAY)
      await holder.acquire()
      const waiting = locks
        .createSemaphore('wake', 1, '10s')
        .acquire({ retry: { delay: wakesOnRelease ? LONG_DELAY : 50, timeout: '90s' } })
      await assertServedAfterRelease(assert, holder, waiting)
    })

    test('slots get strictly increasing fencing tokens', async ({ assert }) => {
      const locks = factory()
      const tokens: Array<number | null> = []
      const take = async () => {
        const slot = locks.createSemaphore('tokens', 2, '10s')
        assert.isTrue(await slot.acquireImmediately())
        tokens.push(slot.fencingToken)
        return slot
      }
      const first = await take()
      const second = await take()
      await first.release()
      const third = await take()
      await locks.createSemaphore('tokens', 2).forceRelease()
      await take()
      await second.release().catch(() => {})
      await third.release().catch(() => {})
      /**
       * A store may hand tokens to slots even without fencing for locks
       */
      if (!fencing && tokens.every((token) => token === null)) return
      for (let index = 1; index < tokens.length; index++) {
        assert.isAbove(tokens[index]!, tokens[index - 1]!)
      }
    })

    test('many contenders: never more than limit holders at once, all served', async ({
      assert,
    }) => {
      const locks = factory()
      /**
       * Held long enough that polling stores, too, surely reach the limit
       */
      const { peak, sections, refused } = await crowd(10, 4, 30, (section) =>
        locks
          .createSemaphore('crowd', 3, '10s')
          .run(section, { retry: { delay: 15, timeout: '15s' } })
      )
      assert.equal(peak, 3)
      assert.equal(refused, 0)
      assert.equal(sections, 40)
    }).timeout(40_000)
  })
}
