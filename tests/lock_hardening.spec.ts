import { test } from '@japa/runner'
import { errors, LockFactory } from '../index.ts'
import type { LockStore } from '../src/types.ts'
import { sleep } from '../src/wait.ts'
import { RecordingEmitter } from './helpers/recording_emitter.ts'
import { REAL_STORES, type RealStore } from './helpers/real_stores.ts'

/**
 * The store, with the answers of some calls held back after the backend
 * carried them out, as a slow network would
 */
function withLateAnswers(
  store: LockStore,
  late: { saves?: number[]; extends?: number }
): LockStore {
  let saves = 0
  return new Proxy(store, {
    get(target, property) {
      if (property === 'save') {
        return async (key: string, owner: string, ttl: number | null) => {
          const answer = await target.save(key, owner, ttl)
          const delay = late.saves?.[saves++]
          if (delay) await sleep(delay)
          return answer
        }
      }
      if (property === 'extend' && late.extends) {
        return async (key: string, owner: string, duration: number) => {
          await target.extend(key, owner, duration)
          await sleep(late.extends!)
        }
      }
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms
  while (performance.now() < deadline) {
    if (await check()) return true
    await sleep(20)
  }
  return check()
}

for (const kind of REAL_STORES) {
  test.group(`Lock hardening | ${kind.name}`, (group) => {
    let current: RealStore | undefined
    group.each.setup(async (t) => {
      if (!(await kind.available())) {
        t.skip(true, `${kind.name} is not reachable`)
        return
      }
      current = await kind.open()
    })
    group.each.teardown(async () => {
      await current?.close()
      current = undefined
    })
    group.each.timeout(20_000)

    test('the late answer of a given-up try does not free a newer acquisition', async ({
      assert,
    }) => {
      const { store, prefix } = current!
      const slow = withLateAnswers(store, { saves: [1500] })
      const lock = new LockFactory(slow, { prefix }).createLock('late', 300)
      await assert.rejects(
        () => lock.acquire({ retry: { timeout: 200 } }),
        errors.E_LOCK_STORAGE_ERROR as any
      )
      /**
       * The first try took the lock on the server for 300 ms: it has expired
       */
      assert.isTrue(await lock.acquire({ retry: { timeout: '5s' } }))
      await lock.extend('10s')
      await sleep(1000)
      assert.isTrue(await lock.isOwned())
      const other = new LockFactory(store, { prefix }).createLock('late', '10s')
      assert.isFalse(await other.acquireImmediately())
      await lock.release()
    })

    test('the lock counts itself expired no later than the store frees its key', async ({
      assert,
    }) => {
      const { store, prefix } = current!
      const locks = new LockFactory(store, { prefix })
      /**
       * Asking the store without pause finds the moment it frees the key;
       * stores with a whole-ms clock free it up to a ms before started + ttl
       */
      for (let round = 0; round < 20; round++) {
        const lock = locks.createLock(`expiry.${round}`, 40)
        assert.isTrue(await lock.acquire())
        while (await store.exists(lock.storeKey)) {}
        assert.isTrue(lock.isExpired(), `round ${round}: the store freed the key first`)
      }
    })

    test('a lock given up by the watchdog is released, not held until its ttl', async ({
      assert,
    }) => {
      const { store, prefix } = current!
      /**
       * Extensions are carried out, but answered too late: the watchdog
       * gives up at the local expiry while the server holds the lock longer
       */
      const slow = withLateAnswers(store, { extends: 4000 })
      const lock = new LockFactory(slow, { prefix }).createLock('watched', 3000)
      const [ran] = await lock.run(
        async ({ signal }) => {
          await until(async () => signal.aborted, 8000)
          assert.isTrue(signal.aborted)
        },
        { autoExtend: true }
      )
      assert.isTrue(ran)
      const other = new LockFactory(store, { prefix }).createLock('watched', '10s')
      assert.isTrue(await until(() => other.acquireImmediately(), 800))
      await other.release()
    })

    test('a run that overran its ttl leaves the watchdog of a newer acquisition running', async ({
      assert,
    }) => {
      const { store, prefix } = current!
      const locks = new LockFactory(store, { prefix })
      const lock = locks.createLock('rewatched', 500)
      const [ran] = await lock.run(async () => {
        await sleep(600)
        assert.isTrue(lock.isExpired())
        /**
         * The same object taken again (with a fresh owner) and kept by its
         * watchdog, while this run has not ended yet
         */
        assert.isTrue(await lock.acquire({ autoExtend: true, retry: { timeout: '5s' } }))
      })
      assert.isTrue(ran)
      const lostSignal = lock.lostSignal!
      /**
       * Five ttls: the store has dropped the lock unless it was extended
       */
      await sleep(2500)
      assert.isTrue(await lock.isOwned())
      assert.isFalse(lostSignal.aborted)
      const other = locks.createLock('rewatched', '10s')
      assert.isFalse(await other.acquireImmediately())
      await other.forceRelease()
      assert.isTrue(await other.acquireImmediately())
      assert.isTrue(await until(async () => lostSignal.aborted, 5000))
      await other.release()
    })

    for (const waiterIs of ['the same', 'another'] as const) {
      test(`a release settles before the waiter it frees resumes (${waiterIs} Lock object)`, async ({
        assert,
      }) => {
        const { store, prefix } = current!
        const emitter = new RecordingEmitter()
        const locks = new LockFactory(store, { prefix, emitter })
        const holder = locks.createLock('settle', '30s')
        const waiter = waiterIs === 'the same' ? holder : locks.createLock('settle', '30s')
        assert.isTrue(await holder.acquire())
        const seen: string[] = []
        const released = new Promise<void>((resolve) => {
          setTimeout(async () => {
            await holder.release()
            seen.push('released')
            resolve()
          }, 50)
        })
        assert.isTrue(await waiter.acquire({ retry: { timeout: '10s' } }))
        seen.push('acquired')
        await released
        assert.deepEqual(seen, ['released', 'acquired'])
        assert.isAbove(waiter.getRemainingTime()!, 20_000)
        assert.isTrue(await waiter.isOwned())
        assert.deepEqual(
          emitter.names().filter((name) => name !== 'lock:failed'),
          ['lock:acquired', 'lock:released', 'lock:acquired']
        )
        await waiter.release()
      })
    }

    for (const start of ['free', 'held'] as const) {
      test(`acquires started in the same tick are served in call order (lock ${start})`, async ({
        assert,
      }) => {
        const { prefix } = current!
        for (let round = 0; round < 12; round++) {
          /**
           * A store of its own each round: its first acquires, before any wait
           */
          const locks = new LockFactory(current!.fresh(), { prefix })
          const key = `order.${round}`
          const holder = locks.createLock(key, '10s')
          if (start === 'held') assert.isTrue(await holder.acquire())
          const order: number[] = []
          /**
           * A retry delay longer than the test: the second acquire is served
           * by its place in line, never by a poll that a slow machine lets
           * fire while the first one's try is still on its way
           */
          const runs = [1, 2].map((id) =>
            locks.createLock(key, '10s').run(
              async () => {
                order.push(id)
                await sleep(5)
              },
              { retry: { timeout: '20s', delay: '15s' } }
            )
          )
          if (start === 'held') {
            await sleep(30)
            await holder.release()
          }
          await Promise.all(runs)
          assert.deepEqual(order, [1, 2], `round ${round}`)
        }
      })
    }
  })
}
