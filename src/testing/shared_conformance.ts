import { test } from '@japa/runner'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import { LockFactory } from '../lock_factory.ts'
import { sleep } from '../wait.ts'
import {
  assertHeld,
  assertNotHeld,
  crowd,
  shiftAppClock,
  storePerTest,
  untilFree,
  type SuiteContext,
} from './helpers.ts'
import type { StoreSuiteOptions } from './store_suite.ts'

/**
 * Far more than any ttl of these tests, far less than anything that
 * would upset a connection pool's own clock-based bookkeeping for long
 */
const SHIFT = 10 * 60_000

/**
 * Two instances of the store, from the author's factory, standing for two
 * servers: they share every lock. Skipped for a process-local store.
 */
export function registerSharedConformance(
  name: string,
  options: StoreSuiteOptions,
  skip: string | false
) {
  const { fencing = true, semaphores = true } = options

  /**
   * A factory per instance, on the same keys
   */
  async function servers(current: SuiteContext) {
    const other = await current.other()
    return [current.store, other].map(
      (store) => new LockFactory(store, { prefix: current.prefix, storeName: 'suite' })
    ) as [LockFactory, LockFactory]
  }

  test.group(`${name} | shared by two instances`, (group) => {
    const groupSkip = skip || (options.processLocal === true && 'process-local store')
    const current = storePerTest(group, options, groupSkip, 30_000)

    test('a lock held through one instance is refused through the other', async ({ assert }) => {
      const [one, two] = await servers(current)
      const first = one.createLock('shared.1', '10s')
      const second = two.createLock('shared.1', '10s')

      assert.isTrue(await first.acquireImmediately())
      assert.isFalse(await second.acquireImmediately())
      assert.isTrue(await second.isLocked())
      await assertHeld(assert, first, current.store, await current.other())
      await assertNotHeld(assert, second, await current.other())

      await first.release()
      assert.isTrue(await second.acquireImmediately())
      assert.isFalse(await first.acquireImmediately())
      await assertHeld(assert, second, await current.other(), current.store)
    })

    test('a lock taken through one instance is extended and released through the other', async ({
      assert,
    }) => {
      const [one, two] = await servers(current)
      const lock = one.createLock('shared.2', '10s')
      await lock.acquire()
      const there = two.restoreLock(JSON.parse(JSON.stringify(lock.serialize())))
      await there.extend('20s')
      await assertHeld(assert, lock, current.store, await current.other())
      await there.release()
      assert.isFalse(await lock.isLocked())
      await assert.rejects(() => lock.release(), E_LOCK_NOT_OWNED as any)
    })

    test('a forced release through one instance frees the lock of the other', async ({
      assert,
    }) => {
      const [one, two] = await servers(current)
      const holder = one.createLock('shared.3', '10s')
      await holder.acquire()
      await two.createLock('shared.3').forceRelease()
      await assertNotHeld(assert, holder, current.store)
      assert.isTrue(await two.createLock('shared.3', '10s').acquireImmediately())
    })

    test('a lock expired through one instance is taken through the other', async ({ assert }) => {
      const [one, two] = await servers(current)
      const stale = one.createLock('shared.4', 300)
      await stale.acquire()
      await untilFree(assert, await current.other(), stale.storeKey)
      const fresh = two.createLock('shared.4', '10s')
      assert.isTrue(await fresh.acquireImmediately())
      await assert.rejects(() => stale.release(), E_LOCK_NOT_OWNED as any)
      await assertHeld(assert, fresh, await current.other(), current.store)
    })

    test('fencing tokens keep increasing across instances, also new ones', async ({ assert }) => {
      const [one, two] = await servers(current)
      /**
       * A third instance, as a server that just booted
       */
      const booted = await options.createStore()
      try {
        const three = new LockFactory(booted, { prefix: current.prefix })
        const tokens: Array<number | null> = []
        for (const [index, locks] of [one, two, one, three, two, three].entries()) {
          const lock = locks.createLock('shared.5', '10s')
          assert.isTrue(await lock.acquireImmediately(), `take ${index + 1} was refused`)
          tokens.push(lock.fencingToken)
          if (index % 2) await lock.forceRelease()
          else await lock.release()
        }
        if (!fencing) return assert.deepEqual(tokens, Array(6).fill(null))
        for (let index = 1; index < tokens.length; index++) {
          assert.isAbove(tokens[index]!, tokens[index - 1]!)
        }
      } finally {
        await (options.closeStore ? options.closeStore(booted) : booted.close?.())
      }
    })

    test('contenders spread over two instances never overlap', async ({ assert }) => {
      const locks = await servers(current)
      const { peak, sections, refused } = await crowd(6, 4, 1, (section, worker) =>
        locks[worker % 2]
          .createLock('shared.6', '10s')
          .run(section, { retry: { delay: 15, timeout: '20s' } })
      )
      assert.equal(peak, 1, 'overlapping critical sections')
      assert.equal(refused, 0)
      assert.equal(sections, 24)
    })

    test('a semaphore counts the holders of both instances', async ({ assert }) => {
      const [one, two] = await servers(current)
      const first = one.createSemaphore('shared.7', 2, '10s')
      const second = two.createSemaphore('shared.7', 2, '10s')
      const third = one.createSemaphore('shared.7', 2, '10s')
      assert.isTrue(await first.acquireImmediately())
      assert.isTrue(await second.acquireImmediately())
      assert.isFalse(await third.acquireImmediately())
      assert.isFalse(await two.createSemaphore('shared.7', 2, '10s').acquireImmediately())
      await second.release()
      assert.isTrue(await third.acquireImmediately())
      if (fencing) {
        assert.isAbove(second.fencingToken!, first.fencingToken!)
        assert.isAbove(third.fencingToken!, second.fencingToken!)
      }
    }).skip(groupSkip !== false || !semaphores, groupSkip || 'no semaphores')
  })

  test.group(`${name} | expiry by the store's clock`, (group) => {
    const groupSkip = skip || (options.processClock === true && "expiry by the process's clock")
    const current = storePerTest(group, options, groupSkip, 30_000)
    let restoreClock: (() => void) | undefined
    group.each.teardown(() => {
      restoreClock?.()
      restoreClock = undefined
    })

    /**
     * From now on, the app clock is off by `shift`, as another server's
     * would be: a store that counts expiry on it sees a lock taken before
     * expire early or late
     */
    function skew(shift: number) {
      restoreClock = shiftAppClock(shift)
    }

    test('with the app clock ahead, a held lock stays held', async ({ assert }) => {
      const [one, two] = await servers(current)
      const holder = one.createLock('clock.1', '10s')
      await holder.acquire()
      skew(SHIFT)
      assert.isFalse(await two.createLock('clock.1', '10s').acquireImmediately())
      assert.isTrue(await two.createLock('clock.1').isLocked())
      await assertHeld(assert, holder, current.store, await current.other())
      await holder.extend('10s')
      await holder.release()
    })

    test('with the app clock behind, an expired lock is free on time', async ({ assert }) => {
      const [one, two] = await servers(current)
      const stale = one.createLock('clock.2', 300)
      await stale.acquire()
      skew(-SHIFT)
      await untilFree(assert, await current.other(), stale.storeKey)
      assert.isTrue(await two.createLock('clock.2', '10s').acquireImmediately())
      await assert.rejects(() => stale.release(), E_LOCK_NOT_OWNED as any)
    })

    test('with the app clock ahead, a semaphore slot stays held', async ({ assert }) => {
      const [one, two] = await servers(current)
      const holder = one.createSemaphore('clock.3', 1, '10s')
      await holder.acquire()
      skew(SHIFT)
      assert.isFalse(await two.createSemaphore('clock.3', 1, '10s').acquireImmediately())
      assert.isTrue(await holder.isOwned())
    }).skip(groupSkip !== false || !semaphores, groupSkip || 'no semaphores')

    test('with the app clock behind, a semaphore slot is free on time', async ({ assert }) => {
      const [one, two] = await servers(current)
      await one.createSemaphore('clock.4', 1, 300).acquire()
      skew(-SHIFT)
      const next = two.createSemaphore('clock.4', 1, '10s')
      let taken = false
      for (let tick = 0; tick < 300 && !taken; tick++) {
        taken = await next.acquireImmediately()
        if (!taken) await sleep(30)
      }
      assert.isTrue(taken, 'the slot never expired')
    }).skip(groupSkip !== false || !semaphores, groupSkip || 'no semaphores')
  })
}
