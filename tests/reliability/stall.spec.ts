/**
 * A private Redis or PostgreSQL server freezes (SIGSTOP) in the middle of
 * acquire, extend and release, then thaws (SIGCONT). Connections stay
 * open and nothing answers, like a network stall. Each call fails with
 * E_LOCK_STORAGE_ERROR within its bound, or succeeds once the server
 * thaws; none hangs; and afterwards the lock never has two owners.
 */
import { test } from '@japa/runner'
import { E_LOCK_LOST } from '../../src/errors.ts'
import { STORE_ANSWER_GRACE } from '../../src/wait.ts'
import { sleep } from '../../src/wait.ts'
import { privatePostgresAvailable } from '../helpers/private_postgres.ts'
import { redisBinariesAvailable } from '../helpers/redis_servers.ts'
import { uniqueKey } from '../helpers/services.ts'
import {
  startFaultyLocks,
  startPostgresServer,
  startRedisServer,
  type FaultServer,
  type FaultVariant,
} from './helpers/fault_servers.ts'
import { describeOutcome, isStorageError, onceBack, timed } from './helpers/outcomes.ts'

/**
 * How long the server stays frozen
 */
const STALL = 2000
/**
 * Scheduling slack on a loaded machine, on top of a call's own bound
 */
const SLACK = 2000

interface Variant extends FaultVariant {
  /**
   * The client gives up on a call by itself (and the server may still
   * carry it out once it thaws)
   */
  clientTimeout?: number
}

const VARIANTS: Variant[] = [
  {
    title: 'Redis, default client options',
    available: redisBinariesAvailable,
    start: () => startRedisServer({ persistent: false }),
    clientOptions: {},
  },
  {
    title: 'Redis, commandTimeout 500 ms',
    available: redisBinariesAvailable,
    start: () => startRedisServer({ persistent: false }),
    clientOptions: { commandTimeout: 500 },
    clientTimeout: 500,
  },
  {
    title: 'PostgreSQL, default client options',
    available: privatePostgresAvailable,
    start: () => startPostgresServer(),
    clientOptions: {},
  },
]

/**
 * Freezes the server for STALL ms around `during`
 */
async function frozen<T>(server: FaultServer, during: () => Promise<T>): Promise<T> {
  server.pause()
  const pausedAt = Date.now()
  try {
    const result = during()
    await sleep(STALL - (Date.now() - pausedAt))
    server.resume()
    return await result
  } finally {
    server.resume()
  }
}

test.group('Reliability | server frozen during acquire, extend and release', () => {
  for (const variant of VARIANTS) {
    test(variant.title, async ({ assert, cleanup }) => {
      const { server, locks } = await startFaultyLocks(variant, cleanup, 'stall')
      /**
       * A call without a timeout of its own: the client's, or the thaw
       */
      const unbounded = (variant.clientTimeout ?? STALL) + SLACK

      /**
       * Acquire: a waiter on a held key and a try on a free key both fail
       * within their timeout. The try on the free key may be carried out
       * once the server thaws: the lock then releases what it took.
       */
      const held = uniqueKey('held')
      const free = uniqueKey('free')
      /**
       * Long enough to tell a released late acquisition from an expired
       * one, unless the client drops late answers
       */
      const freeTtl = variant.clientTimeout === undefined ? '30s' : '3s'
      const holder = locks.createLock(held, '20s')
      assert.isTrue(await holder.acquire())
      const [waiter, freeTry] = await frozen(server, () =>
        Promise.all([
          timed(() => locks.createLock(held, '20s').acquire({ retry: { timeout: 800 } })),
          timed(() => locks.createLock(free, freeTtl).acquire({ retry: { timeout: 500 } })),
        ])
      )
      assert.isTrue(isStorageError(waiter), describeOutcome(waiter))
      assert.isAtMost(waiter.elapsed, 800 + STORE_ANSWER_GRACE + SLACK)
      assert.isTrue(isStorageError(freeTry), describeOutcome(freeTry))
      assert.isAtMost(freeTry.elapsed, 500 + STORE_ANSWER_GRACE + SLACK)
      assert.isTrue(await onceBack(() => holder.isOwned()), 'the holder lost its lock')

      const next = locks.createLock(free, '3s')
      if (variant.clientTimeout === undefined) {
        /**
         * The lock saw the late answer and released what it took, long
         * before its ttl
         */
        const freed = await timed(() => next.acquire({ retry: { timeout: SLACK * 2 } }))
        assert.isTrue(
          freed.value,
          `the late acquisition was not released: ${describeOutcome(freed)}`
        )
      } else {
        /**
         * The client dropped the answer: the late acquisition is nobody's
         * and lasts its ttl, during which nobody else gets the key
         */
        assert.isTrue(await next.acquire({ retry: { timeout: '6s' } }))
      }
      assert.isTrue(await next.isOwned())
      await next.release()

      /**
       * Extend: it succeeds once the server thaws, or fails within the
       * client's timeout; either way the holder still holds, alone
       */
      const [extended, refused] = await frozen(server, () =>
        Promise.all([
          timed(() => holder.extend('20s')),
          timed(() => locks.createLock(held, '20s').acquire({ retry: { timeout: 500 } })),
        ])
      )
      assert.isTrue(!('error' in extended) || isStorageError(extended), describeOutcome(extended))
      assert.isAtMost(extended.elapsed, unbounded)
      assert.isTrue(isStorageError(refused), describeOutcome(refused))
      assert.isTrue(await onceBack(() => holder.isOwned()), 'the holder lost its lock')
      assert.isFalse(await locks.createLock(held, '20s').acquireImmediately())

      /**
       * Release while a waiter waits: the waiter gets the lock after the
       * release went through, or fails; never both hold it
       */
      const contender = locks.createLock(held, '20s')
      const [released, waited] = await frozen(server, () =>
        Promise.all([
          timed(() => holder.release()),
          timed(() => contender.acquire({ retry: { timeout: STALL + 4000 } })),
        ])
      )
      assert.isTrue(!('error' in released) || isStorageError(released), describeOutcome(released))
      assert.isAtMost(released.elapsed, unbounded)
      assert.isTrue(waited.value === true || isStorageError(waited), describeOutcome(waited))
      assert.isAtMost(waited.elapsed, STALL + 4000 + STORE_ANSWER_GRACE + SLACK)
      const owners = await onceBack(() => Promise.all([holder.isOwned(), contender.isOwned()]))
      assert.isFalse(owners[0] && owners[1], 'two owners')
      if (waited.value === true) assert.deepEqual(owners, [false, true])
      if (!('error' in released)) assert.isFalse(owners[0], 'released, yet still owned')
      if (owners[1]) await contender.release()
      else if (owners[0]) await holder.release()
    })
      .timeout(60_000)
      .skip(!variant.available(), 'the server binaries are not installed')
  }
})

test.group('Reliability | server frozen under an aborted acquire and an autoExtend run', () => {
  for (const variant of VARIANTS) {
    test(variant.title, async ({ assert, cleanup }) => {
      const { server, locks } = await startFaultyLocks(variant, cleanup, 'stall')

      /**
       * An acquire without a timeout rejects with its signal's reason
       * while the store call hangs, instead of waiting for the thaw
       */
      const key = uniqueKey('aborted')
      const controller = new AbortController()
      const reason = new Error('the caller gave up')
      const aborted = await frozen(server, () => {
        setTimeout(() => controller.abort(reason), 300)
        return timed(() => locks.createLock(key, '30s').acquire({ signal: controller.signal }))
      })
      assert.strictEqual(aborted.error, reason, describeOutcome(aborted))
      assert.isBelow(aborted.elapsed, STALL)
      if (variant.clientTimeout === undefined) {
        /**
         * The try went through after the thaw: the lock released it
         */
        const next = locks.createLock(key, '3s')
        assert.isTrue(await next.acquire({ retry: { timeout: SLACK * 2 } }), 'still taken')
        await next.release()
      }

      /**
       * The watchdog's extensions hang (or time out) while the server is
       * frozen: the run's signal aborts when the lock's ttl runs out, not
       * after the thaw
       */
      const extended = locks.createLock(uniqueKey('extended'), 900)
      const [ran, seen] = await extended.run(
        async ({ signal }) => {
          server.pause()
          const pausedAt = Date.now()
          try {
            await sleep(STALL, signal).catch(() => {})
            return { reason: signal.reason as unknown, abortedAfter: Date.now() - pausedAt }
          } finally {
            server.resume()
          }
        },
        { autoExtend: true }
      )
      assert.isTrue(ran)
      assert.instanceOf(seen!.reason, E_LOCK_LOST)
      assert.isBelow(seen!.abortedAfter, STALL)
      const next = locks.createLock(extended.key, '3s')
      assert.isTrue(await next.acquire({ retry: { timeout: SLACK * 2 } }), 'still taken')
      await next.release()
    })
      .timeout(60_000)
      .skip(!variant.available(), 'the server binaries are not installed')
  }
})
