import { test } from '@japa/runner'
import { sleep } from '../wait.ts'
import type { HandOverSuite } from './hand_over_conformance.ts'
import { PROMISE_BOUND, waitOnce, watchCalls } from './helpers.ts'

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
 * A process's turn on a key ends now and then and its waiters pause for
 * other processes' waiters, so that busy processes take turns
 */
export function registerHandOverTurnsConformance({
  current,
  factory,
  peerOf,
  wakesOtherProcesses,
}: HandOverSuite) {
  test('a process alone on a busy key pauses for others ever more rarely', async ({ assert }) => {
    const locks = factory()
    assert.isFalse(await waitOnce(locks))
    const calls = watchCalls(current.store).calls
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
     * Each worker's first try, then one per pause (turn lengths: src/waiting/
     * turns.ts; growing turns keep this far below a try per section)
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
        const locks = factory()
        const others = factory(peer.store)
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
        locks: factory(store),
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
       * With the default retry. Where other processes poll, a turn taken
       * over by another process is followed by a short first turn, not one
       * grown as for a process alone, which the other's workers would sit
       * out. Counted in sections, which a loaded machine makes fewer.
       */
      for (const side of sides) {
        assert.isAtLeast(side.sections, TURNS, 'a side was not served in time')
        assert.isAtMost(side.longestWait, LONGEST_WAIT)
      }
    } finally {
      await peer.close()
    }
  }).timeout(60_000)
}
