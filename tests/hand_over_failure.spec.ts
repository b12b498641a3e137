import { test } from '@japa/runner'
import { Redis } from 'ioredis'
import { errors, LockFactory } from '../index.ts'
import { RedisStore } from '../src/stores/main.ts'
import { settleWithin, sleep } from '../src/wait.ts'
import { RedisServer, redisBinariesAvailable } from './helpers/redis_servers.ts'
import { StallingHandOverStore } from './helpers/waiters_memory_store.ts'

const binaries = redisBinariesAvailable()

test.group('Redis store | a hand-over that fails', (group) => {
  group.tap((t) => {
    t.skip(!binaries, 'redis-server is not installed')
    t.timeout(60_000)
  })

  test('the releaser gets E_LOCK_STORAGE_ERROR and the waiter tries on its own', async ({
    assert,
    cleanup,
  }) => {
    /**
     * A private server: it is made to refuse writes
     */
    const server = await RedisServer.start()
    cleanup(() => server.destroy())
    const connection = new Redis({ port: server.port })
    const admin = new Redis({ port: server.port })
    const store = new RedisStore({ connection })
    cleanup(async () => {
      await store.close()
      connection.disconnect()
      admin.disconnect()
    })
    const locks = new LockFactory(store)

    /**
     * A first wait sets up the release subscription
     */
    const first = locks.createLock('first wait', '10s')
    await first.acquire()
    await locks.createLock('first wait').acquire({ retry: { delay: 100, timeout: 300 } })
    await first.release()

    const holder = locks.createLock('handed', '60s')
    await holder.acquire()
    const waiter = locks.createLock('handed', '10s')
    const calls = { saves: 0 }
    const waiting = waiter
      .acquire({ retry: { delay: '60s', timeout: '90s' } })
      .catch((error: unknown) => error)
    await sleep(200)
    const save = store.save.bind(store)
    store.save = (...args) => {
      calls.saves++
      return save(...args)
    }

    /**
     * Out of memory, the server refuses the hand-over's writes
     */
    await admin.config('SET', 'maxmemory-policy', 'noeviction')
    await admin.config('SET', 'maxmemory', '1')
    const released = await holder.release().then(
      () => undefined,
      (error: unknown) => error
    )
    await admin.config('SET', 'maxmemory', '0')
    assert.instanceOf(released, errors.E_LOCK_STORAGE_ERROR)

    /**
     * Not handed the lock, the waiter does not sleep out its minute (or
     * the holder's): it tries on its own at once
     */
    for (let tick = 0; tick < 200 && calls.saves === 0; tick++) await sleep(50)
    assert.isAbove(calls.saves, 0, 'the waiter never tried on its own')

    /**
     * Its try got the store's error if the server still refused writes;
     * else it waits for the holder, whose lock is still there
     */
    await holder.forceRelease()
    const outcome = await settleWithin(waiting, 10_000)
    if (outcome === true) {
      assert.isTrue(await waiter.isOwned())
      await waiter.release()
    } else {
      assert.instanceOf(outcome, errors.E_LOCK_STORAGE_ERROR, 'the waiter is still waiting')
    }
  })
})

test.group('Waiting line | a hand-over that never answers', () => {
  test('acquire() outlives its retry.timeout by at most 1 s when a hand-over to it stalls', async ({
    assert,
  }) => {
    const locks = new LockFactory(new StallingHandOverStore())
    const holder = locks.createLock('job', '10s')
    assert.isTrue(await holder.acquire())
    const startedAt = performance.now()
    const acquire = locks
      .createLock('job', '10s')
      .acquire({ retry: { timeout: 200, delay: 1000 } })
      .catch((error: unknown) => error)
    await sleep(50)
    holder.release().catch(() => {})
    const outcome = await acquire
    const took = performance.now() - startedAt
    assert.instanceOf(outcome, errors.E_LOCK_STORAGE_ERROR)
    /**
     * README: "a store that does not answer fails the call ... at most 1 s
     * past it" (a try after the hand-over's grace took 1 s more)
     */
    assert.isAtMost(Math.round(took), 200 + 1000 + 500)
  }).timeout(10_000)
})
