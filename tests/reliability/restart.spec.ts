/**
 * A private Redis or PostgreSQL server goes down and comes back while a
 * lock is held and others wait for it. Calls made meanwhile fail with
 * E_LOCK_STORAGE_ERROR within their timeout, every waiter settles within
 * its own timeout, and the store works again once the server is back: a
 * lock that survived the restart keeps its single owner, and fencing
 * tokens keep increasing across the restart.
 */
import { test } from '@japa/runner'
import { E_LOCK_NOT_OWNED } from '../../src/errors.ts'
import { STORE_ANSWER_GRACE } from '../../src/wait.ts'
import { sleep } from '../../src/wait.ts'
import { privatePostgresAvailable } from '../helpers/private_postgres.ts'
import { redisBinariesAvailable } from '../helpers/redis_servers.ts'
import { uniqueKey } from '../helpers/services.ts'
import {
  startFaultyLocks,
  startPostgresServer,
  startRedisServer,
  type FaultVariant,
} from './helpers/fault_servers.ts'
import { count } from './helpers/figures.ts'
import { describeOutcome, isStorageError, onceBack, timed } from './helpers/outcomes.ts'

const HOLD_TTL = 8000
const WAITERS = 4
/**
 * The waiters' timeouts (and the grace of their last try) run out while
 * the server is down
 */
const WAIT_TIMEOUT = 1200
const DOWNTIME = 2800
/**
 * Scheduling slack on a loaded machine, on top of a call's own bound
 */
const SLACK = 2000

interface Variant extends FaultVariant {
  /**
   * Whether a held lock survives the restart
   */
  durable: boolean
}

const VARIANTS: Variant[] = [
  {
    title: 'Redis with appendfsync always, default client options',
    available: redisBinariesAvailable,
    start: () => startRedisServer({ persistent: true }),
    clientOptions: {},
    durable: true,
  },
  {
    title: 'Redis with appendfsync always, commandTimeout 500 ms',
    available: redisBinariesAvailable,
    start: () => startRedisServer({ persistent: true }),
    clientOptions: { commandTimeout: 500 },
    durable: true,
  },
  {
    title: 'Redis without persistence',
    available: redisBinariesAvailable,
    start: () => startRedisServer({ persistent: false }),
    clientOptions: {},
    durable: false,
  },
  {
    title: 'PostgreSQL, killed (immediate shutdown) and recovered',
    available: privatePostgresAvailable,
    start: () => startPostgresServer(),
    clientOptions: {},
    durable: true,
  },
]

test.group('Reliability | server restarted while a lock is held and waited for', () => {
  for (const variant of VARIANTS) {
    test(variant.title, async ({ assert, cleanup }) => {
      const { server, locks } = await startFaultyLocks(variant, cleanup, 'restart')
      const key = uniqueKey('restart')

      const holder = locks.createLock(key, HOLD_TTL)
      assert.isTrue(await holder.acquire({ retry: { timeout: 5000 } }))
      const heldToken = holder.fencingToken!
      const waiters = Array.from({ length: WAITERS }, () => {
        const lock = locks.createLock(key, HOLD_TTL)
        return timed(() => lock.acquire({ retry: { timeout: WAIT_TIMEOUT, delay: 100 } }))
      })
      await sleep(200)

      const downAt = Date.now()
      await server.stop()
      const during = await timed(() =>
        locks.createLock(uniqueKey('down'), '10s').acquire({ retry: { timeout: 500 } })
      )
      assert.isTrue(isStorageError(during), describeOutcome(during))
      assert.isAtMost(during.elapsed, 500 + STORE_ANSWER_GRACE + SLACK)
      /**
       * Without a timeout the call is bounded by the client: it fails, or
       * it waits for the server and is answered once it is back
       */
      const extendDuring = timed(() => holder.extend())

      await sleep(DOWNTIME - (Date.now() - downAt))
      await server.start()

      const outcomes = await Promise.all(waiters)
      for (const outcome of outcomes) {
        assert.isAtMost(
          outcome.elapsed,
          WAIT_TIMEOUT + STORE_ANSWER_GRACE + SLACK,
          `a waiter outlived its timeout: ${describeOutcome(outcome)}`
        )
        assert.isTrue(
          outcome.value === false || isStorageError(outcome),
          `a waiter ended with ${describeOutcome(outcome)}`
        )
      }
      assert.isAtLeast(outcomes.filter(isStorageError).length, 1, 'no waiter saw the outage')

      const extended = await extendDuring
      assert.isAtMost(extended.elapsed, DOWNTIME + 15_000)

      const owned = await onceBack(() => holder.isOwned())
      if (variant.durable) {
        /**
         * The lock survived the restart: its holder still holds it, alone
         */
        assert.isTrue(owned, 'the held lock did not survive the restart')
        assert.isTrue(!('error' in extended) || isStorageError(extended), describeOutcome(extended))
        assert.isFalse(await locks.createLock(key, HOLD_TTL).acquireImmediately())
        await holder.release()
      } else {
        /**
         * The server came back empty: the holder finds out it lost the
         * lock, and tokens handed out after the restart are still greater
         */
        assert.isFalse(owned)
        await assert.rejects(() => holder.extend(), E_LOCK_NOT_OWNED as any)
      }

      const next = locks.createLock(key, HOLD_TTL)
      assert.isTrue(await next.acquire({ retry: { timeout: 5000 } }))
      assert.isAbove(next.fencingToken!, heldToken)
      await next.release()
      count('restartWaiters', WAITERS)
    })
      .timeout(60_000)
      .skip(!variant.available(), 'the server binaries are not installed')
  }
})
