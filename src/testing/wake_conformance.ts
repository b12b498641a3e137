import { test } from '@japa/runner'
import { LockFactory } from '../lock_factory.ts'
import type { LockStore } from '../types.ts'
import { settleWithin, sleep } from '../wait.ts'
import {
  LONG_DELAY,
  PROMISE_BOUND,
  settlesInBound,
  storePerTest,
  waitOnce,
  watchCalls,
} from './helpers.ts'
import type { StoreSuiteOptions } from './store_suite.ts'

/**
 * Enough rounds that a store missing a wake-up now and then (one in 25)
 * fails nearly always: 0.96^60 < 9 %, and less where both tests run
 */
const ROUNDS = 60

/**
 * For a store that claims `wakesOnRelease`: a waiter sleeping with a retry
 * delay of a minute is woken by every release or forced release, and does
 * not poll meanwhile
 */
export function registerWakeConformance(
  name: string,
  options: StoreSuiteOptions,
  skip: string | false
) {
  const { wakesOnRelease = true } = options
  const wakesOthers =
    !options.processLocal && wakesOnRelease && (options.handsOver?.wakesOtherProcesses ?? true)

  test.group(`${name} | wake-up on release`, (group) => {
    const current = storePerTest(
      group,
      options,
      skip || (!wakesOnRelease && 'no wake-up on release'),
      60_000
    )

    /**
     * The waiter's store, and the holder's: the same instance, or another
     * one standing for another server
     */
    async function sides(holderIn: string) {
      const waiterStore = current.store
      const holderStore: LockStore =
        holderIn === 'this instance' ? waiterStore : await current.other()
      const waiters = new LockFactory(waiterStore, { prefix: current.prefix })
      const holders = new LockFactory(holderStore, { prefix: current.prefix })
      await waitOnce(waiters, holders)
      return { waiters, holders, watch: watchCalls(waiterStore) }
    }

    const places = wakesOthers ? ['this instance', 'another instance'] : ['this instance']
    for (const holderIn of places) {
      test(`every release in ${holderIn} wakes the waiter, which does not poll meanwhile`, async ({
        assert,
      }) => {
        const { waiters, holders, watch } = await sides(holderIn)
        for (let round = 0; round < ROUNDS; round++) {
          const holder = holders.createLock('woken', LONG_DELAY)
          assert.isTrue(await holder.acquireImmediately())
          const waiter = waiters.createLock('woken', '10s')
          const waiting = watch.waiting()
          const acquiring = waiter.acquire({ retry: { delay: LONG_DELAY, timeout: '90s' } })
          assert.isTrue(
            (await settleWithin(
              waiting.then(() => true),
              PROMISE_BOUND
            )) === true,
            'the waiter never waited for a release'
          )
          if (round === 0) {
            /**
             * A waiter polling instead of sleeping would try again here
             */
            const saves = watch.calls.saves
            await sleep(300)
            assert.equal(watch.calls.saves, saves, 'the waiter polled while the lock was held')
          }
          await holder.release()
          assert.isTrue(
            await settlesInBound(acquiring),
            `the release of round ${round + 1} did not wake the waiter`
          )
          assert.isTrue(await acquiring)
          await waiter.release()
        }
      })

      test(`a forced release in ${holderIn} wakes the waiter`, async ({ assert }) => {
        const { waiters, holders, watch } = await sides(holderIn)
        for (let round = 0; round < 10; round++) {
          const holder = holders.createLock('forced', LONG_DELAY)
          assert.isTrue(await holder.acquireImmediately())
          const waiter = waiters.createLock('forced', '10s')
          const waiting = watch.waiting()
          const acquiring = waiter.acquire({ retry: { delay: LONG_DELAY, timeout: '90s' } })
          await settleWithin(waiting, PROMISE_BOUND)
          await holders.createLock('forced').forceRelease()
          assert.isTrue(
            await settlesInBound(acquiring),
            `the forced release of round ${round + 1} did not wake the waiter`
          )
          assert.isTrue(await acquiring)
          await waiter.release()
        }
      })
    }
  })
}
