/**
 * The `assert` of the test context comes from the @japa/assert plugin
 */
import type {} from '@japa/assert'
import { test } from '@japa/runner'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import { LockFactory } from '../lock_factory.ts'
import type { LockEventEmitter, LockFactoryOptions, LockStore } from '../types.ts'
import { sleep } from '../wait.ts'

export interface StoreSuiteOptions {
  /**
   * Builds the store under test; called once per test
   */
  createStore: () => LockStore | Promise<LockStore>
  /**
   * Tears a store down after each test (defaults to `store.close()`)
   */
  closeStore?: (store: LockStore) => unknown
  /**
   * Skips the whole suite (a service that is not there)
   */
  skip?: boolean | string
  /**
   * The store wakes waiters on release rather than making them poll, with
   * `waitForRelease()` (default `true`)
   */
  wakesOnRelease?: boolean
  /**
   * A refused `save()` answers with `retryAfter`, the holder's remaining
   * time, so that waiters retry as soon as it expires (default `true`)
   */
  reportsRetryAfter?: boolean
  /**
   * The store hands out fencing tokens (default `true`)
   */
  fencing?: boolean
  /**
   * The store implements SemaphoreStore (default `true`)
   */
  semaphores?: boolean
  /**
   * The store hands the lock from a release straight to a waiter of its
   * process. `createPeer` opens a second store on the same keys, standing
   * for another process.
   */
  handsOver?: {
    createPeer: (store: LockStore) => Promise<{ store: LockStore; close: () => Promise<void> }>
    /**
     * Releases in other processes wake this one's waiters (default), and
     * runs of hand-overs grow while no other process takes the lock. False
     * where other processes' waiters poll: runs then stay short, so that
     * a poll finds the lock free often enough.
     */
    wakesOtherProcesses?: boolean
  }
}

/**
 * The names of the events the locks emit, in order
 */
class RecordingEmitter implements LockEventEmitter {
  #names: string[] = []

  emit(name: string) {
    this.#names.push(name)
  }

  names() {
    return this.#names
  }
}

/**
 * `workers` loops of `rounds` runs each, all at once, each run holding for
 * `holdMs`: the most holders seen at once, the sections run, the runs
 * refused
 */
async function crowd(
  workers: number,
  rounds: number,
  holdMs: number,
  run: (section: () => Promise<void>) => Promise<[boolean, unknown]>
) {
  let inside = 0
  let peak = 0
  let sections = 0
  let refused = 0
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let round = 0; round < rounds; round++) {
        const [ran] = await run(async () => {
          peak = Math.max(peak, ++inside)
          await sleep(holdMs)
          sections++
          inside--
        })
        if (!ran) refused++
      }
    })
  )
  return { peak, sections, refused }
}

type Group = Parameters<Parameters<typeof test.group>[1]>[0]

/**
 * A store of its own and a fresh key prefix for every test of the group,
 * closed after it; `skip` is why the group does not run, if it does not
 */
function storePerTest(
  group: Group,
  options: StoreSuiteOptions,
  skip: string | false,
  timeout: number
) {
  const current: { store?: LockStore; prefix: string } = { prefix: '' }
  group.tap((t) => {
    t.skip(skip !== false, skip || undefined)
    t.timeout(timeout)
  })
  group.each.setup(async () => {
    current.prefix = `suite:${process.pid}:${Math.random().toString(36).slice(2, 10)}`
    const store = await options.createStore()
    current.store = store
    return async () => {
      current.store = undefined
      await (options.closeStore ? options.closeStore(store) : store.close?.())
    }
  })
  return current
}

/**
 * Registers the Japa groups every lock store must pass; the built-in
 * stores run them too. For a custom store, in a test file of the app
 * (the `@japa/assert` plugin is needed):
 *
 * ```ts
 * import { registerStoreSuite } from 'adonis-lock/testing'
 *
 * registerStoreSuite('My store', {
 *   createStore: () => new MyStore(),
 *   // what the store does not do (each is `true` when omitted)
 *   fencing: false,
 *   reportsRetryAfter: false,
 *   wakesOnRelease: false,
 *   semaphores: false,
 * })
 * ```
 */
export function registerStoreSuite(name: string, options: StoreSuiteOptions) {
  const {
    fencing = true,
    wakesOnRelease = true,
    semaphores = true,
    reportsRetryAfter = true,
  } = options
  const skipReason = typeof options.skip === 'string' ? options.skip : `${name} is not available`

  test.group(`${name} | store conformance`, (group) => {
    const current = storePerTest(group, options, options.skip ? skipReason : false, 15_000)

    const factory = (extra: LockFactoryOptions = {}) =>
      new LockFactory(current.store!, { prefix: current.prefix, ...extra })

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
    })

    test('release frees the lock for the next owner', async ({ assert }) => {
      const locks = factory()
      const first = locks.createLock('order.2', '10s')
      const second = locks.createLock('order.2', '10s')

      assert.isTrue(await first.acquire())
      await first.release()
      assert.isFalse(await first.isLocked())
      assert.isTrue(await second.acquireImmediately())
    })

    test('a non-owner cannot release, and the holder keeps the lock', async ({ assert }) => {
      const locks = factory()
      const holder = locks.createLock('order.3', '10s')
      const intruder = locks.createLock('order.3', '10s')
      await holder.acquire()

      await assert.rejects(() => intruder.release(), E_LOCK_NOT_OWNED as any)
      assert.isTrue(await holder.isOwned())
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
      const stale = locks.createLock('order.5', 150)
      const fresh = locks.createLock('order.5', '10s')

      assert.isTrue(await stale.acquire())
      assert.isFalse(await fresh.acquireImmediately())
      await sleep(300)
      assert.isTrue(stale.isExpired())
      assert.isTrue(await fresh.acquireImmediately())

      await assert.rejects(() => stale.release(), E_LOCK_NOT_OWNED as any)
      await assert.rejects(() => stale.extend(), E_LOCK_NOT_OWNED as any)
      assert.isTrue(await fresh.isOwned())
      assert.isFalse(await stale.isOwned())
    })

    test('an expired lock no longer counts as locked', async ({ assert }) => {
      const lock = factory().createLock('order.6', 100)
      await lock.acquire()
      await sleep(250)
      assert.isFalse(await lock.isLocked())
      assert.equal(lock.getRemainingTime(), 0)
    })

    test('extend pushes the expiry forward', async ({ assert }) => {
      const locks = factory()
      const lock = locks.createLock('order.7', 300)
      const other = locks.createLock('order.7', '10s')
      await lock.acquire()
      await sleep(150)
      await lock.extend('1s')
      assert.isAbove(lock.getRemainingTime()!, 800)
      await sleep(300)
      assert.isFalse(await other.acquireImmediately())
      assert.isTrue(await lock.isOwned())
    })

    test('extend by a non-owner and after expiry fails with E_LOCK_NOT_OWNED', async ({
      assert,
    }) => {
      const locks = factory()
      const lock = locks.createLock('order.8', 100)
      const other = locks.createLock('order.8', 100)
      await lock.acquire()
      await assert.rejects(() => other.extend(), E_LOCK_NOT_OWNED as any)
      await sleep(250)
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
    })

    test('a lock without ttl never expires', async ({ assert }) => {
      const lock = factory().createLock('order.10', null)
      await lock.acquire()
      assert.isNull(lock.getRemainingTime())
      assert.isFalse(lock.isExpired())
      await sleep(50)
      assert.isTrue(await lock.isLocked())
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
      await take(100)
      await sleep(200)
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
      const startedAt = Date.now()
      assert.isFalse(await waiter.acquire({ retry: { timeout: 200, delay: 20 } }))
      assert.isAtLeast(Date.now() - startedAt, 190)
      assert.isTrue(await holder.isOwned())
    })

    test('a waiter gets the lock once the holder releases it', async ({ assert }) => {
      const locks = factory()
      const holder = locks.createLock('order.14', '10s')
      await holder.acquire()

      const delay = wakesOnRelease ? 5000 : 50
      const waiting = locks.createLock('order.14').acquire({ retry: { delay, timeout: '8s' } })
      await sleep(100)
      const releasedAt = Date.now()
      await holder.release()
      assert.isTrue(await waiting)
      if (wakesOnRelease) {
        /**
         * Woken by the release: far sooner than the 5 s poll interval
         */
        assert.isBelow(Date.now() - releasedAt, 2500)
      }
    })

    test('a waiter retries when the holder expires, not later', async ({ assert }) => {
      const locks = factory()
      await locks.createLock('order.15', 300).acquire()
      /**
       * Without retryAfter a waiter can only poll for the expiry
       */
      const delay = reportsRetryAfter ? 5000 : 50
      const startedAt = Date.now()
      assert.isTrue(await locks.createLock('order.15').acquire({ retry: { delay, timeout: '8s' } }))
      assert.isBelow(Date.now() - startedAt, 2500)
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
  test.group(`${name} | hand-over to waiters`, (group) => {
    const current = storePerTest(
      group,
      options,
      options.skip ? skipReason : !options.handsOver && 'no hand-over',
      20_000
    )

    /**
     * Counts the tries of the store from now on
     */
    function countSaves(target: LockStore) {
      const calls = { saves: 0 }
      const save = target.save.bind(target)
      target.save = (...args) => {
        calls.saves++
        return save(...args)
      }
      return calls
    }

    /**
     * Three waiters line up behind a holder of this process or of another
     * one (a peer store on the same keys), then each passes the lock on
     */
    const wakesOtherProcesses = options.handsOver?.wakesOtherProcesses ?? true
    const holders = wakesOtherProcesses ? ['this process', 'another process'] : ['this process']
    for (const holderIn of holders) {
      test(`a release in ${holderIn} starts a line of waiters that are handed the lock in arrival order`, async ({
        assert,
      }) => {
        const peer =
          holderIn === 'another process'
            ? await options.handsOver!.createPeer(current.store!)
            : undefined
        try {
          const emitter = new RecordingEmitter()
          const locks = new LockFactory(current.store!, { prefix: current.prefix, emitter })
          const holder = new LockFactory(peer?.store ?? current.store!, {
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
          const calls = countSaves(current.store!)

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
          const startedAt = Date.now()
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
          assert.isBelow(Date.now() - startedAt, 10_000)
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
      const locks = new LockFactory(current.store!, { prefix: current.prefix })
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
      const locks = new LockFactory(current.store!, { prefix: current.prefix })
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

    /**
     * A lock of this process waits on the store, in vain, on a key of its
     * own: from then on the store has its waiters (and its subscriber, or
     * LISTEN connection), which count tries in progress as in line.
     * Resolves to the outcome of that wait.
     */
    async function waitOnce(locks: LockFactory): Promise<boolean> {
      const holder = locks.createLock('first wait', '10s')
      await holder.acquire()
      const acquired = await locks
        .createLock('first wait')
        .acquire({ retry: { delay: 100, timeout: 300 } })
      await holder.release()
      return acquired
    }

    test('a newcomer queues behind a try in progress instead of racing it', async ({ assert }) => {
      const locks = new LockFactory(current.store!, { prefix: current.prefix })
      await waitOnce(locks)
      const calls = countSaves(current.store!)
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
      const locks = new LockFactory(current.store!, { prefix: current.prefix })
      await waitOnce(locks)
      const holder = locks.createLock('given up', '10s')
      await holder.acquire()
      const calls = countSaves(current.store!)
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
      const locks = new LockFactory(current.store!, { prefix: current.prefix })
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
      const calls = countSaves(current.store!)
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
     * A lock of 300 ms ttl that the release of a holder of this process
     * hands over (after a first wait, so that the store has its waiters)
     */
    async function handedOver(locks: LockFactory, key: string) {
      await waitOnce(locks)
      const holder = locks.createLock(key, '10s')
      await holder.acquire()
      const handed = locks.createLock(key, 300)
      const handing = handed.acquire({ retry: { delay: '30s' } })
      await sleep(100)
      await holder.release()
      return { handed, acquired: await handing }
    }

    test('a lock handed to a waiter that expires unreleased holds no newcomer back', async ({
      assert,
    }) => {
      const locks = new LockFactory(current.store!, { prefix: current.prefix })
      const { acquired } = await handedOver(locks, 'expired here')
      assert.isTrue(acquired)
      await sleep(500)

      /**
       * Believing the lock still held here, the newcomer would wait in
       * line until its timeout instead of trying
       */
      const startedAt = Date.now()
      const newcomer = locks.createLock('expired here', '10s')
      assert.isTrue(await newcomer.acquire({ retry: { delay: '30s', timeout: '10s' } }))
      assert.isBelow(Date.now() - startedAt, 5000)
      await newcomer.release()
    })

    test('a lock handed to a waiter and extended still holds newcomers in line', async ({
      assert,
    }) => {
      const locks = new LockFactory(current.store!, { prefix: current.prefix })
      const { handed, acquired } = await handedOver(locks, 'extended here')
      assert.isTrue(acquired)
      await handed.extend('10s')
      await sleep(500)

      /**
       * Past the handed lock's first ttl, but not its extension: the
       * newcomer joins the line rather than spend a refused try
       */
      const calls = countSaves(current.store!)
      const newcomer = locks.createLock('extended here', '10s')
      const waiting = newcomer.acquire({ retry: { delay: '30s', timeout: '15s' } })
      await sleep(100)
      assert.equal(calls.saves, 0, 'the newcomer spent a refused try')
      await handed.release()
      assert.isTrue(await waiting)
      await newcomer.release()
    })

    test('a process alone on a busy key stands back for others ever more rarely', async ({
      assert,
    }) => {
      const locks = new LockFactory(current.store!, { prefix: current.prefix })
      assert.isFalse(await waitOnce(locks))
      const calls = countSaves(current.store!)
      let sections = 0
      await Promise.all(
        Array.from({ length: 3 }, async () => {
          for (let round = 0; round < 200; round++) {
            const [ran] = await locks.createLock('alone', '10s').run(
              async () => {
                await sleep(1)
                sections++
              },
              { retry: { delay: '30s', timeout: '15s' } }
            )
            assert.isTrue(ran)
          }
        })
      )
      assert.equal(sections, 600)
      /**
       * Each worker's first try, then one try after each time the waiters
       * stood back for other processes: after 16, 32, 64, 128 and 256
       * hand-overs, then every 256 (a fixed 16 would be ~35 tries); where
       * other processes poll, after runs of 0.25, 0.5, 1 and 2 s, then
       * every 2.5 s. Without hand-overs, each section would cost a try.
       */
      assert.isAtMost(calls.saves, 12)
    })

    test(
      'waiters of another process get their turn while this one keeps the lock busy with {$self} sections'
    )
      .with(['2 ms', '50 ms'])
      .run(async ({ assert }, section) => {
        const peer = await options.handsOver!.createPeer(current.store!)
        try {
          const locks = new LockFactory(current.store!, { prefix: current.prefix })
          const others = new LockFactory(peer.store, { prefix: current.prefix })
          /**
           * Released to this process only, the lock would reach the other
           * process's waiter at its next poll, 30 s from now at the earliest.
           * Where other processes' waiters poll, it must be free at one of
           * those polls (and the waiters here too poll for it back).
           */
          const delay = wakesOtherProcesses ? '30s' : 100
          let stop = false
          const busy = Array.from({ length: 3 }, async () => {
            while (!stop) {
              await locks
                .createLock('busy', '10s')
                .run(() => sleep(Number.parseInt(section)), { retry: { delay, timeout: '15s' } })
            }
          })
          await sleep(100)
          const startedAt = Date.now()
          const other = others.createLock('busy', '10s')
          const acquired = await other.acquire({ retry: { delay, timeout: '5s' } })
          const waited = Date.now() - startedAt
          stop = true
          if (acquired) await other.release()
          await Promise.all(busy)
          assert.isTrue(acquired, 'the other process never got the lock')
          assert.isBelow(waited, 5000)
        } finally {
          await peer.close()
        }
      })

    test('two busy processes take turns', async ({ assert }) => {
      const peer = await options.handsOver!.createPeer(current.store!)
      try {
        const sides = [current.store!, peer.store].map((store) => ({
          locks: new LockFactory(store, { prefix: current.prefix }),
          sections: 0,
          longestWait: 0,
        }))
        let inside = 0
        let overlaps = 0
        const until = Date.now() + 4000
        await Promise.all(
          sides.flatMap((side) =>
            Array.from({ length: 3 }, async () => {
              while (Date.now() < until) {
                const startedAt = Date.now()
                const [ran] = await side.locks.createLock('turns', '10s').run(
                  async () => {
                    side.longestWait = Math.max(side.longestWait, Date.now() - startedAt)
                    if (++inside > 1) overlaps++
                    await sleep(2)
                    inside--
                    side.sections++
                  },
                  { retry: { timeout: '15s' } }
                )
                assert.isTrue(ran)
              }
            })
          )
        )
        assert.equal(overlaps, 0)
        /**
         * With the default retry. Where other processes poll, a run of
         * hand-overs taken over by another process is followed by a first
         * run (a quarter second) rather than by one grown as for a process
         * alone (up to 2.5 s), which the other's workers would sit out.
         */
        for (const side of sides) {
          assert.isAbove(side.sections, 100)
          assert.isBelow(side.longestWait, 1500)
        }
      } finally {
        await peer.close()
      }
    })
  })

  test.group(`${name} | semaphore conformance`, (group) => {
    const current = storePerTest(
      group,
      options,
      options.skip ? skipReason : !semaphores && 'no semaphores',
      20_000
    )

    const factory = () =>
      new LockFactory(current.store!, { prefix: current.prefix, storeName: 'suite' })

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
      const short = locks.createSemaphore('slots', 1, 150)
      const other = locks.createSemaphore('slots', 1, '10s')
      await short.acquire()
      await assert.rejects(() => other.release(), E_LOCK_NOT_OWNED as any)
      await assert.rejects(() => other.extend(), E_LOCK_NOT_OWNED as any)
      await short.extend(400)
      await sleep(250)
      assert.isFalse(await other.acquireImmediately())
      await sleep(300)
      assert.isTrue(await other.acquireImmediately())
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
      const holder = locks.createSemaphore('wake', 1, '10s')
      await holder.acquire()
      const waiting = locks
        .createSemaphore('wake', 1, '10s')
        .acquire({ retry: { delay: wakesOnRelease ? 5000 : 50, timeout: '8s' } })
      await sleep(100)
      const releasedAt = Date.now()
      await holder.release()
      assert.isTrue(await waiting)
      if (wakesOnRelease) assert.isBelow(Date.now() - releasedAt, 2500)
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
