import { test } from '@japa/runner'
import { Redis } from 'ioredis'
import { errors, LockFactory } from '../index.ts'
import { MemoryStore, RedisStore } from '../src/stores/main.ts'
import type { LockEvents, LockStore } from '../src/types.ts'
import { sleep } from '../src/wait.ts'
import { SERVICES, serviceAvailable, uniqueKey } from './helpers/services.ts'

/**
 * Every event with its payload, in order
 */
class PayloadEmitter {
  events: Array<{ name: keyof LockEvents; data: any }> = []

  emit<K extends keyof LockEvents>(name: K, data: LockEvents[K]) {
    this.events.push({ name, data })
  }

  payloads<K extends keyof LockEvents>(name: K): Array<LockEvents[K]> {
    return this.events.filter((event) => event.name === name).map((event) => event.data)
  }
}

/**
 * A store whose tries never answer, as a stalled server
 */
function stalledStore(): LockStore {
  const store = new MemoryStore()
  store.save = () => new Promise(() => {})
  return store
}

test.group('README promises | events', () => {
  test('lock:acquired tells how long the acquire waited and how many tries it took', async ({
    assert,
  }) => {
    const emitter = new PayloadEmitter()
    const locks = new LockFactory(new MemoryStore(), { emitter, storeName: 'memory' })
    const holder = locks.createLock('events.acquired', '10s')
    await holder.acquire()
    const waiter = locks.createLock('events.acquired', '10s')
    const waiting = waiter.acquire({ retry: { delay: '30s', timeout: '20s' } })
    await sleep(200)
    await holder.release()
    assert.isTrue(await waiting)

    const [first, second] = emitter.payloads('lock:acquired')
    assert.deepEqual(first, {
      key: 'events.acquired',
      store: 'memory',
      owner: holder.getOwner(),
      waited: first.waited,
      attempts: 1,
      fencingToken: holder.fencingToken,
    })
    assert.isAtLeast(first.waited, 0)
    assert.equal(second.owner, waiter.getOwner())
    assert.isAtLeast(second.waited, 200)
    assert.isAtLeast(second.attempts, 1)
    assert.equal(second.fencingToken, waiter.fencingToken)
  })

  test('lock:extended carries the new ttl', async ({ assert }) => {
    const emitter = new PayloadEmitter()
    const locks = new LockFactory(new MemoryStore(), { emitter, storeName: 'memory' })
    const lock = locks.createLock('events.extended', '10s')
    await lock.acquire()
    await lock.extend('20s')
    await lock.extend()
    assert.deepEqual(emitter.payloads('lock:extended'), [
      { key: 'events.extended', store: 'memory', owner: lock.getOwner(), ttl: 20_000 },
      { key: 'events.extended', store: 'memory', owner: lock.getOwner(), ttl: 10_000 },
    ])
  })

  test('lock:failed says timeout, attempts or aborted', async ({ assert }) => {
    const emitter = new PayloadEmitter()
    const locks = new LockFactory(new MemoryStore(), { emitter, storeName: 'memory' })
    await locks.createLock('events.failed', '10s').acquire()

    /**
     * Each acquire of a lock not held tries with an owner of its own
     * (getOwner() tells which), so a late cleanup of one cannot free another
     */
    const waiter = locks.createLock('events.failed', '10s')
    const owners: string[] = []
    assert.isFalse(await waiter.acquire({ retry: { timeout: 200, delay: 50 } }))
    owners.push(waiter.getOwner())
    assert.isFalse(await waiter.acquire({ retry: { attempts: 2, delay: 10 } }))
    owners.push(waiter.getOwner())
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('gone')), 100)
    await assert.rejects(
      () => waiter.acquire({ signal: controller.signal, retry: { delay: 20 } }),
      'gone'
    )
    owners.push(waiter.getOwner())

    const failures = emitter.payloads('lock:failed')
    assert.deepEqual(
      failures.map((failure) => failure.reason),
      ['timeout', 'attempts', 'aborted']
    )
    for (const [index, failure] of failures.entries()) {
      assert.equal(failure.key, 'events.failed')
      assert.equal(failure.owner, owners[index])
      assert.isAtLeast(failure.attempts, 1)
    }
    assert.isAtLeast(failures[0].waited, 190)
    assert.equal(failures[1].attempts, 2)
  })
})

test.group('README promises | retry.timeout', () => {
  /**
   * "acquire() returns at most 1 s past retry.timeout"
   */
  for (const timeout of [100, 800]) {
    test(`a held lock: acquire with a ${timeout} ms timeout returns false within 1 s past it`, async ({
      assert,
    }) => {
      const locks = new LockFactory(new MemoryStore())
      await locks.createLock('timeout.held', '10s').acquire()
      const startedAt = performance.now()
      assert.isFalse(
        await locks.createLock('timeout.held').acquire({ retry: { timeout, delay: '5s' } })
      )
      assert.isAtMost(performance.now() - startedAt, timeout + 1000)
    })
  }

  test('a stalled store: acquire with a 800 ms timeout fails within 1 s past it', async ({
    assert,
  }) => {
    const locks = new LockFactory(stalledStore())
    const startedAt = performance.now()
    await assert.rejects(
      () => locks.createLock('timeout.stalled').acquire({ retry: { timeout: 800 } }),
      errors.E_LOCK_STORAGE_ERROR as any
    )
    assert.isAtMost(performance.now() - startedAt, 1800)
  })

  test('a store stalling on a try late in the wait: acquire fails within 1 s past the timeout', async ({
    assert,
  }) => {
    const store = stalledStore()
    const stall = store.save
    store.save = async () => {
      store.save = stall
      return { acquired: false, retryAfter: 700 }
    }
    const locks = new LockFactory(store)
    const startedAt = performance.now()
    await assert.rejects(
      () => locks.createLock('timeout.late').acquire({ retry: { timeout: 1000, delay: '5s' } }),
      errors.E_LOCK_STORAGE_ERROR as any
    )
    assert.isAtMost(performance.now() - startedAt, 2000)
  })
})

const redisAvailable = await serviceAvailable('redis')

test.group('README promises | Redis stores with and without fencing', (group) => {
  group.tap((t) => t.skip(!redisAvailable, 'Redis is not reachable on 127.0.0.1:6379'))

  test('exclude each other on the same keys', async ({ assert, cleanup }) => {
    const connection = new Redis({ port: SERVICES.redis.port })
    const fenced = new RedisStore({ connection, fencing: true })
    const bare = new RedisStore({ connection, fencing: false })
    const prefix = uniqueKey('fencing-mix')
    cleanup(async () => {
      await Promise.all([fenced.close(), bare.close()])
      const keys = await connection.keys(`*${prefix}*`)
      if (keys.length) await connection.del(...keys)
      await connection.quit()
    })
    const withTokens = new LockFactory(fenced, { prefix })
    const without = new LockFactory(bare, { prefix })

    const first = withTokens.createLock('mixed', '10s')
    assert.isTrue(await first.acquireImmediately())
    assert.isFalse(await without.createLock('mixed', '10s').acquireImmediately())
    await assert.rejects(
      () => without.restoreLock({ ...first.serialize(), owner: 'someone' }).release(),
      errors.E_LOCK_NOT_OWNED as any
    )
    await first.release()

    const second = without.createLock('mixed', '10s')
    assert.isTrue(await second.acquireImmediately())
    assert.isFalse(await withTokens.createLock('mixed', '10s').acquireImmediately())
    await without.restoreLock(second.serialize()).release()

    const third = withTokens.createLock('mixed', '10s')
    assert.isTrue(await third.acquireImmediately())
    assert.isAbove(third.fencingToken!, first.fencingToken!)
    assert.isFalse(await without.createLock('mixed', '10s').acquireImmediately())
  })
})
