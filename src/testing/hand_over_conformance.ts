import { test } from '@japa/runner'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import { LockFactory } from '../lock_factory.ts'
import type { LockStore } from '../types.ts'
import { sleep } from '../wait.ts'
import {
  LONG_DELAY,
  PROMISE_BOUND,
  RecordingEmitter,
  settlesInBound,
  storePerTest,
  untilFree,
  watchCalls,
} from './helpers.ts'
import type { StoreSuiteOptions } from './store_suite.ts'

/**
 * Sections each of two busy processes must run
 */
const TURNS = 150

/**
 * The most sections of one process that a waiter of the other may sit
 * out
 */
const LONGEST_WAIT = 100

/**
 * For a store that hands a release straight to a waiter of its process
 */
export function registerHandOverConformance(
  name: string,
  options: StoreSuiteOptions,
  skip: string | false
) {
  const { fencing = true } = options

  test.group(`${name} | hand-over to waiters`, (group) => {
    const current = storePerTest(
      group,
      options,
      skip || (!options.handsOver && 'no hand-over'),
      30_000
    )

    /**
     * Another process's store on the same keys
     */
    async function peerOf(): Promise<{ store: LockStore; close: () => Promise<void> }> {
      const create = options.handsOver?.createPeer
      if (create) return create(current.store)
      return { store: await current.other(), close: async () => {} }
    }

    const countSaves = (target: LockStore) => watchCalls(target).calls

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
          const calls = countSaves(current.store)

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
      const locks = new LockFactory(current.store, { prefix: current.prefix })
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
      const locks = new LockFactory(current.store, { prefix: current.prefix })
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
      const locks = new LockFactory(current.store, { prefix: current.prefix })
      await waitOnce(locks)
      const calls = countSaves(current.store)
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
      const locks = new LockFactory(current.store, { prefix: current.prefix })
      await waitOnce(locks)
      const holder = locks.createLock('given up', '10s')
      await holder.acquire()
      const calls = countSaves(current.store)
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
      const locks = new LockFactory(current.store, { prefix: current.prefix })
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
      const calls = countSaves(current.store)
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
      const locks = new LockFactory(current.store, { prefix: current.prefix })
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
      const locks = new LockFactory(current.store, { prefix: current.prefix })
      const startedAt = performance.now()
      const { handed, acquired } = await handedOver(locks, 'extended here', 1500)
      assert.isTrue(acquired)
      await handed.extend('20s')
      await sleep(startedAt + 2000 - performance.now())

      /**
       * Past the handed lock's first ttl, but not its extension: the
       * newcomer joins the line rather than spend a refused try
       */
      const calls = countSaves(current.store)
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
      const locks = new LockFactory(current.store, { prefix: current.prefix })
      assert.isFalse(await waitOnce(locks))
      const calls = countSaves(current.store)
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
        const peer = await peerOf()
        try {
          const locks = new LockFactory(current.store, { prefix: current.prefix })
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
          const other = others.createLock('busy', '10s')
          const acquired = await other.acquire({ retry: { delay, timeout: PROMISE_BOUND } })
          stop = true
          if (acquired) await other.release()
          await Promise.all(busy)
          assert.isTrue(acquired, 'the other process never got the lock')
        } finally {
          await peer.close()
        }
      })

    test('two busy processes take turns', async ({ assert }) => {
      const peer = await peerOf()
      try {
        const sides = [current.store, peer.store].map((store) => ({
          locks: new LockFactory(store, { prefix: current.prefix }),
          sections: 0,
          /**
           * The most sections of the other side that one worker of this
           * side sat out while it waited
           */
          longestWait: 0,
        }))
        let inside = 0
        let overlaps = 0
        const deadline = performance.now() + 3 * PROMISE_BOUND
        const served = () => Math.min(...sides.map((side) => side.sections)) >= TURNS
        await Promise.all(
          sides.flatMap((side, index) =>
            Array.from({ length: 3 }, async () => {
              const other = sides[1 - index]
              while (!served() && performance.now() < deadline) {
                const otherSectionsBefore = other.sections
                const [ran] = await side.locks.createLock('turns', '10s').run(
                  async () => {
                    side.longestWait = Math.max(
                      side.longestWait,
                      other.sections - otherSectionsBefore
                    )
                    if (++inside > 1) overlaps++
                    await sleep(2)
                    inside--
                    side.sections++
                  },
                  { retry: { timeout: '20s' } }
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
         * Counted in sections, which a loaded machine makes fewer, not more.
         */
        for (const side of sides) {
          assert.isAtLeast(side.sections, TURNS, 'a side was not served in time')
          assert.isAtMost(side.longestWait, LONGEST_WAIT)
        }
      } finally {
        await peer.close()
      }
    }).timeout(60_000)
  })
}
