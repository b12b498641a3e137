import { test } from '@japa/runner'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import { LockFactory } from '../lock_factory.ts'
import type { LockFactoryOptions } from '../types.ts'
import { sleep } from '../wait.ts'
import {
  LONG_DELAY,
  RecordingEmitter,
  assertHeld,
  assertNotHeld,
  assertServedAfterRelease,
  crowd,
  settlesInBound,
  shiftAppClock,
  storePerTest,
  untilFree,
} from './helpers.ts'
import type { StoreSuiteOptions } from './store_suite.ts'

const TEN_YEARS = 10 * 365 * 24 * 3_600_000

/**
 * What every store does with locks, on one instance (and a second one
 * where a check needs another owner's view of the store)
 */
export function registerLockConformance(
  name: string,
  options: StoreSuiteOptions,
  skip: string | false
) {
  const {
    fencing = true,
    wakesOnRelease = true,
    reportsRetryAfter = true,
    processClock = false,
  } = options

  test.group(`${name} | store conformance`, (group) => {
    const current = storePerTest(group, options, skip, 30_000)

    const factory = (extra: LockFactoryOptions = {}) =>
      new LockFactory(current.store, { prefix: current.prefix, ...extra })

    test('acquires a free lock and refuses a second owner', async ({ assert }) => {
      const locks = factory()
      const first = locks.createLock('order.1', '10s')
      const second = locks.createLock('order.1', '10s')

      assert.isTrue(await first.acquireImmediately())
      assert.isFalse(await second.acquireImmediately())
      assert.isTrue(await first.isLocked())
      assert.isTrue(await first.isOwned())
      assert.isFalse(await second.isOwned())
      assert.isTrue(await second.isLocked())
      await assertHeld(assert, first, current.store, await current.other())
      await assertNotHeld(assert, second, current.store)
    })

    test('release frees the lock for the next owner', async ({ assert }) => {
      const locks = factory()
      const first = locks.createLock('order.2', '10s')
      const second = locks.createLock('order.2', '10s')

      assert.isTrue(await first.acquire())
      await first.release()
      assert.isFalse(await first.isLocked())
      await assertNotHeld(assert, first, current.store)
      assert.isTrue(await second.acquireImmediately())
    })

    test('a non-owner cannot release, and the holder keeps the lock', async ({ assert }) => {
      const locks = factory()
      const holder = locks.createLock('order.3', '10s')
      const intruder = locks.createLock('order.3', '10s')
      await holder.acquire()

      await assert.rejects(() => intruder.release(), E_LOCK_NOT_OWNED as any)
      assert.isTrue(await holder.isOwned())
      await assertHeld(assert, holder, current.store, await current.other())
      await holder.release()
    })

    test('a double release fails with E_LOCK_NOT_OWNED', async ({ assert }) => {
      const lock = factory().createLock('order.4', '10s')
      await lock.acquire()
      await lock.release()
      await assert.rejects(() => lock.release(), E_LOCK_NOT_OWNED as any)
    })

    test('an expired lock is taken over and its old owner cannot release the new holder', async ({
      assert,
    }) => {
      const locks = factory()
      const stale = locks.createLock('order.5', '1s')
      const fresh = locks.createLock('order.5', '10s')

      assert.isTrue(await stale.acquire())
      assert.isFalse(await fresh.acquireImmediately())
      await untilFree(assert, current.store, stale.storeKey)
      assert.isTrue(stale.isExpired())
      assert.isTrue(await fresh.acquireImmediately())

      await assert.rejects(() => stale.release(), E_LOCK_NOT_OWNED as any)
      await assert.rejects(() => stale.extend(), E_LOCK_NOT_OWNED as any)
      assert.isTrue(await fresh.isOwned())
      assert.isFalse(await stale.isOwned())
      await assertHeld(assert, fresh, current.store, await current.other())
      await assertNotHeld(assert, stale, current.store)
    })

    test('an expired lock no longer counts as locked', async ({ assert }) => {
      const lock = factory().createLock('order.6', 100)
      await lock.acquire()
      await sleep(250)
      assert.isFalse(await lock.isLocked())
      assert.equal(lock.getRemainingTime(), 0)
    })

    test('a release after expiry, with no new holder, fails with E_LOCK_NOT_OWNED', async ({
      assert,
    }) => {
      const locks = factory()
      const lock = locks.createLock('order.21', 200)
      await lock.acquire()
      await untilFree(assert, current.store, lock.storeKey)

      await assert.rejects(() => lock.release(), E_LOCK_NOT_OWNED as any)
      await assert.rejects(() => lock.extend(), E_LOCK_NOT_OWNED as any)
      assert.isTrue(await locks.createLock('order.21', '10s').acquireImmediately())
    })

    test('extend pushes the expiry forward', async ({ assert }) => {
      const locks = factory()
      const lock = locks.createLock('order.7', '1s')
      const other = locks.createLock('order.7', '10s')
      await lock.acquire()
      const acquiredAt = performance.now()
      await lock.extend('20s')
      assert.isAbove(lock.getRemainingTime()!, 10_000)

      /**
       * Past the first ttl: only the extension keeps the lock
       */
      await sleep(acquiredAt + 1200 - performance.now())
      assert.isFalse(await other.acquireImmediately())
      assert.isTrue(await lock.isOwned())
      await assertHeld(assert, lock, current.store, await current.other())
    })

    test('extend by a non-owner and after expiry fails with E_LOCK_NOT_OWNED', async ({
      assert,
    }) => {
      const locks = factory()
      const lock = locks.createLock('order.8', 200)
      const other = locks.createLock('order.8', 200)
      await lock.acquire()
      await assert.rejects(() => other.extend(), E_LOCK_NOT_OWNED as any)
      await untilFree(assert, current.store, lock.storeKey)
      await assert.rejects(() => lock.extend(), E_LOCK_NOT_OWNED as any)
    })

    test('forceRelease frees a lock held by someone else', async ({ assert }) => {
      const locks = factory()
      const holder = locks.createLock('order.9', '10s')
      const admin = locks.createLock('order.9')
      const next = locks.createLock('order.9', '10s')
      await holder.acquire()

      await admin.forceRelease()
      assert.isFalse(await holder.isLocked())
      assert.isTrue(await next.acquireImmediately())
      await assert.rejects(() => holder.release(), E_LOCK_NOT_OWNED as any)
      assert.isTrue(await next.isOwned())
      await assertHeld(assert, next, current.store, await current.other())
      await assertNotHeld(assert, holder, current.store)
    })

    test('a lock without ttl never expires', async ({ assert }) => {
      const locks = factory()
      const lock = locks.createLock('order.10', null)
      await lock.acquire()
      assert.isNull(lock.getRemainingTime())
      assert.isFalse(lock.isExpired())

      /**
       * A store applying a default ttl would tell a refused owner when
       * it ends, or show it, or (on the process's clock) let it end
       */
      const other = await current.other()
      const refused = await other.save(lock.storeKey, crypto.randomUUID(), 10_000)
      if (reportsRetryAfter && typeof refused === 'object') assert.isNull(refused.retryAfter)
      if (current.store.inspect) {
        const inspection = await current.store.inspect(lock.storeKey)
        assert.isNull(inspection?.expiresIn)
      }
      if (processClock) {
        const restore = shiftAppClock(TEN_YEARS)
        try {
          await assertHeld(assert, lock, current.store, other)
        } finally {
          restore()
        }
      }
      await sleep(50)
      await assertHeld(assert, lock, current.store, other)
      await lock.release()
    })

    test('a restored lock keeps its owner and can release', async ({ assert }) => {
      const locks = factory({ storeName: 'suite' })
      const lock = locks.createLock('order.11', '10s')
      await lock.acquire()

      const serialized = JSON.parse(JSON.stringify(lock.serialize()))
      const restored = locks.restoreLock(serialized)
      assert.equal(restored.getOwner(), lock.getOwner())
      assert.equal(serialized.store, 'suite')
      assert.isTrue(await restored.isOwned())
      await restored.release()
      assert.isFalse(await lock.isLocked())
    })

    test('fencing tokens strictly increase across release, expiry and force release', async ({
      assert,
    }) => {
      if (!fencing) {
        const lock = factory().createLock('order.12', '10s')
        assert.isTrue(await lock.acquire())
        return assert.isNull(lock.fencingToken)
      }
      const locks = factory()
      const tokens: number[] = []
      const take = async (ttl: number | string) => {
        const lock = locks.createLock('order.12', ttl)
        assert.isTrue(await lock.acquire({ retry: { timeout: '5s' } }))
        tokens.push(lock.fencingToken!)
        return lock
      }
      const first = await take('10s')
      await first.release()
      const expiring = await take(100)
      await untilFree(assert, current.store, expiring.storeKey)
      const held = await take('10s')
      await held.forceRelease()
      const last = await take('10s')
      await last.release()

      assert.lengthOf(tokens, 4)
      for (let index = 1; index < tokens.length; index++) {
        assert.isAbove(tokens[index], tokens[index - 1])
      }
    })

    test('acquire gives up after its attempts or its timeout', async ({ assert }) => {
      const locks = factory()
      const holder = locks.createLock('order.13', '10s')
      await holder.acquire()

      const waiter = locks.createLock('order.13')
      assert.isFalse(await waiter.acquire({ retry: { attempts: 0 } }))
      assert.isFalse(await waiter.acquire({ retry: { attempts: 3, delay: 10 } }))
      const startedAt = performance.now()
      assert.isFalse(await waiter.acquire({ retry: { timeout: 200, delay: 20 } }))
      assert.isAtLeast(performance.now() - startedAt, 190)
      assert.isTrue(await holder.isOwned())
    })

    test('a waiter gets the lock once the holder releases it', async ({ assert }) => {
      const locks = factory()
      const holder = locks.createLock('order.14', LONG_DELAY)
      await holder.acquire()

      /**
       * Woken by the release, the waiter is served long before its poll
       */
      const delay = wakesOnRelease ? LONG_DELAY : 50
      const waiting = locks.createLock('order.14').acquire({ retry: { delay, timeout: '90s' } })
      await assertServedAfterRelease(assert, holder, waiting)
    })

    test('a waiter retries when the holder expires, not later', async ({ assert }) => {
      const locks = factory()
      await locks.createLock('order.15', 300).acquire()
      /**
       * Without retryAfter a waiter can only poll for the expiry
       */
      const delay = reportsRetryAfter ? LONG_DELAY : 50
      const waiting = locks.createLock('order.15').acquire({ retry: { delay, timeout: '90s' } })
      assert.isTrue(await settlesInBound(waiting), 'the waiter slept past the expiry')
      assert.isTrue(await waiting)
    })

    test('an aborted acquire rejects with the signal reason', async ({ assert }) => {
      const locks = factory()
      await locks.createLock('order.16', '10s').acquire()
      const controller = new AbortController()
      const reason = new Error('client went away')
      setTimeout(() => controller.abort(reason), 100)
      await assert.rejects(
        () =>
          locks.createLock('order.16').acquire({ signal: controller.signal, retry: { delay: 20 } }),
        'client went away'
      )
    })

    test('run returns the result and releases, also when the callback throws', async ({
      assert,
    }) => {
      const locks = factory()
      const lock = locks.createLock('order.17', '10s')

      const [ran, result] = await lock.run(async ({ fencingToken }) => {
        assert.isTrue(await lock.isOwned())
        await assertHeld(assert, lock, current.store, await current.other())
        if (fencing) assert.isNumber(fencingToken)
        else assert.isNull(fencingToken)
        return 42
      })
      assert.deepEqual([ran, result], [true, 42])
      assert.isFalse(await lock.isLocked())

      await assert.rejects(
        () =>
          lock.run(() => {
            throw new Error('boom')
          }),
        'boom'
      )
      assert.isFalse(await lock.isLocked())
    })

    test('run reports [false, null] when the lock is held', async ({ assert }) => {
      const locks = factory()
      await locks.createLock('order.18', '10s').acquire()
      let called = false
      const outcome = await locks.createLock('order.18').runImmediately(() => (called = true))
      assert.deepEqual(outcome, [false, null])
      assert.isFalse(called)
    })

    test('run keeps the result when the lock expired before release, and reports the loss', async ({
      assert,
    }) => {
      const emitter = new RecordingEmitter()
      const locks = factory({ emitter })
      const lock = locks.createLock('order.19', 100)
      const [ran, result] = await lock.run(async () => {
        await sleep(250)
        await locks.createLock('order.19', '10s').acquire()
        return 'done'
      })
      assert.deepEqual([ran, result], [true, 'done'])
      assert.includeMembers(emitter.names(), ['lock:acquired', 'lock:lost'])
    })

    test('many contenders never overlap and are all served', async ({ assert }) => {
      const locks = factory()
      const { peak, sections, refused } = await crowd(12, 5, 1, (section) =>
        locks.createLock('order.20', '10s').run(section, { retry: { delay: 15, timeout: '12s' } })
      )
      assert.equal(peak, 1, 'overlapping critical sections')
      assert.equal(refused, 0)
      assert.equal(sections, 60)
    }).timeout(30_000)
  })
}
