import { test } from '@japa/runner'
import { errors, LockFactory } from '../index.ts'
import { MemoryStore } from '../src/stores/memory.ts'
import type { LockLogger } from '../src/types.ts'
import { sleep } from '../src/wait.ts'
import { RecordingEmitter } from './helpers/recording_emitter.ts'

/**
 * The memory store, counting the acquire attempts that reach it
 */
class CountingMemoryStore extends MemoryStore {
  saves = 0
  async save(key: string, owner: string, ttl: number | null) {
    this.saves++
    return super.save(key, owner, ttl)
  }
}

/**
 * A store whose backend is down: every call fails like a refused connection
 */
class UnreachableStore extends MemoryStore {
  #fail(): never {
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
  }
  async save(): Promise<never> {
    this.#fail()
  }
  async delete(): Promise<never> {
    this.#fail()
  }
  async extend(): Promise<never> {
    this.#fail()
  }
  async exists(): Promise<never> {
    this.#fail()
  }
}

/**
 * The memory store, answering extensions 50 ms after carrying them out
 */
class SlowExtendStore extends MemoryStore {
  async extend(key: string, owner: string, duration: number) {
    await super.extend(key, owner, duration)
    await sleep(50)
  }
}

class RecordingLogger implements LockLogger {
  warnings: unknown[] = []
  debug() {}
  warn(obj: unknown, msg?: string) {
    this.warnings.push({ obj, msg })
  }
}

const timers = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length

test.group('Lock | input validation', () => {
  test('rejects the key {$self}')
    .with(['', 42, null, undefined, { toString: () => 'x' }, 'x'.repeat(1025), 'é'.repeat(513)])
    .run(({ assert }, key) => {
      const locks = new LockFactory(new MemoryStore())
      assert.throws(() => locks.createLock(key as any), errors.E_INVALID_LOCK_KEY as any)
    })

  test('rejects the semaphore limit {$self}')
    .with([0, -1, 1.5, '3', null, Number.NaN])
    .run(({ assert }, limit) => {
      const locks = new LockFactory(new MemoryStore())
      assert.throws(
        () => locks.createSemaphore('pool', limit as any),
        errors.E_INVALID_SEMAPHORE_LIMIT as any
      )
    })

  test('rejects a semaphore limit above 1000, also when restored', ({ assert }) => {
    const locks = new LockFactory(new MemoryStore())
    assert.equal(locks.createSemaphore('pool', 1000).limit, 1000)
    for (const limit of [1001, 65_536, Number.MAX_SAFE_INTEGER]) {
      assert.throws(
        () => locks.createSemaphore('pool', limit),
        `Invalid semaphore limit ${limit}: the largest is 1000`
      )
      const serialized = { ...locks.createSemaphore('pool', 3).serialize(), limit }
      assert.throws(() => locks.restoreLock(serialized), errors.E_INVALID_SEMAPHORE_LIMIT as any)
    }
  })

  test('a store without semaphore methods says so', ({ assert }) => {
    const lockOnlyStore = {
      save: async () => true,
      delete: async () => {},
      forceDelete: async () => {},
      exists: async () => false,
      extend: async () => {},
    }
    const locks = new LockFactory(lockOnlyStore, { storeName: 'custom' })
    assert.throws(
      () => locks.createSemaphore('pool', 2),
      /"custom" lock store does not implement semaphores/
    )
  })

  test('accepts a key of exactly 1024 bytes', async ({ assert }) => {
    const locks = new LockFactory(new MemoryStore())
    assert.isTrue(await locks.createLock('k'.repeat(1024)).acquireImmediately())
  })

  test('rejects bad ttls and extend durations with E_INVALID_DURATION', async ({ assert }) => {
    const locks = new LockFactory(new MemoryStore())
    assert.throws(() => locks.createLock('a', -1), errors.E_INVALID_DURATION as any)
    assert.throws(() => locks.createLock('a', 'tomorrow'), /Invalid ttl "tomorrow"/)
    for (const zero of [0, '0s', 0.4]) {
      assert.throws(() => locks.createLock('a', zero), /A ttl is at least 1 ms/)
    }
    assert.throws(() => locks.createLock('a', '30d'), /The longest is 2147483647 ms/)
    assert.throws(() => new LockFactory(new MemoryStore(), { ttl: 0 }), /A ttl is at least 1 ms/)
    const lock = locks.createLock('a')
    await lock.acquire()
    await assert.rejects(() => lock.extend('later'), errors.E_INVALID_DURATION as any)
    await assert.rejects(() => lock.extend(0), /A ttl is at least 1 ms/)
    assert.isTrue(await lock.isOwned())
  })

  test('rejects bad retry options of one acquire call', async ({ assert }) => {
    const lock = new LockFactory(new MemoryStore()).createLock('a')
    await assert.rejects(
      () => lock.acquire({ retry: { delay: 'often' } }),
      errors.E_INVALID_DURATION as any
    )
    await assert.rejects(() => lock.acquire({ retry: { attempts: 1.5 } }), /retry.attempts/)
    assert.isFalse(await lock.isLocked())
  })

  test('restoreLock rejects {$self}')
    .with([
      null,
      'lock',
      42,
      {},
      { key: 'a' },
      { key: 'a', owner: '', ttl: null, expirationTime: null },
      { key: 'a', owner: 'o', ttl: 'soon', expirationTime: null },
      { key: 'a', owner: 'o', ttl: null, expirationTime: -3 },
      { key: 'a', owner: 'o', ttl: null, expirationTime: null, fencingToken: 'x' },
      { key: '', owner: 'o', ttl: null, expirationTime: null },
    ])
    .run(({ assert }, garbage) => {
      const locks = new LockFactory(new MemoryStore())
      assert.throws(() => locks.restoreLock(garbage as any), /Cannot restore lock|Invalid lock key/)
    })
})

test.group('Lock | acquire', () => {
  test('retry.attempts 0 and 1 both mean exactly one try', async ({ assert }) => {
    const store = new CountingMemoryStore()
    const locks = new LockFactory(store)
    await locks.createLock('a').acquire()
    store.saves = 0

    assert.isFalse(await locks.createLock('a').acquire({ retry: { attempts: 0 } }))
    assert.equal(store.saves, 1)
    assert.isFalse(await locks.createLock('a').acquire({ retry: { attempts: 1 } }))
    assert.equal(store.saves, 2)
    assert.isFalse(await locks.createLock('a').acquire({ retry: { attempts: 4, delay: 1 } }))
    assert.equal(store.saves, 6)
  })

  test('the local expiry counts from the try that succeeded, not from the first one', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore())
    await locks.createLock('queue', 300).acquire()
    const waiter = locks.createLock('queue', 1000)
    assert.isTrue(await waiter.acquire({ retry: { delay: 20 } }))
    assert.isAbove(waiter.getRemainingTime()!, 900)
  })

  test('config-level retry applies when a call gives none', async ({ assert }) => {
    const store = new CountingMemoryStore()
    const locks = new LockFactory(store, { retry: { attempts: 3, delay: 1 } })
    await locks.createLock('a').acquire()
    store.saves = 0
    assert.isFalse(await locks.createLock('a').acquire())
    assert.equal(store.saves, 3)
  })

  test('a backend failure is E_LOCK_STORAGE_ERROR with the cause, and lock:failed', async ({
    assert,
  }) => {
    const emitter = new RecordingEmitter()
    const lock = new LockFactory(new UnreachableStore(), { emitter }).createLock('a')
    try {
      await lock.acquire({ retry: { timeout: '1s' } })
      assert.fail('acquire should fail')
    } catch (error) {
      assert.instanceOf(error, errors.E_LOCK_STORAGE_ERROR)
      assert.equal((error as any).code, 'E_LOCK_STORAGE_ERROR')
      assert.equal((error as any).status, 503)
      assert.equal(((error as Error).cause as any).code, 'ECONNREFUSED')
    }
    assert.deepEqual(emitter.names(), ['lock:failed'])
    assert.equal((emitter.events[0].data as any).reason, 'error')
    await assert.rejects(() => lock.release(), errors.E_LOCK_STORAGE_ERROR as any)
    await assert.rejects(() => lock.extend('1s'), errors.E_LOCK_STORAGE_ERROR as any)
    await assert.rejects(() => lock.isLocked(), errors.E_LOCK_STORAGE_ERROR as any)
  })
})

test.group('Memory store | contention', () => {
  test('32 workers on one key: thousands of critical sections, 0 overlaps', async ({ assert }) => {
    const locks = new LockFactory(new MemoryStore(), { retry: { delay: 5 } })
    let inside = 0
    let overlaps = 0
    let sections = 0
    const perWorker = new Array(32).fill(0)

    await Promise.all(
      perWorker.map(async (_, worker) => {
        for (let round = 0; round < 100; round++) {
          await locks.createLock('hot', '5s').run(async () => {
            if (++inside > 1) overlaps++
            if (round % 3 === 0) await sleep(0)
            else await Promise.resolve()
            sections++
            perWorker[worker]++
            inside--
          })
        }
      })
    )
    assert.equal(overlaps, 0)
    assert.equal(sections, 3200)
    assert.isTrue(perWorker.every((count) => count === 100))
  }).timeout(60_000)

  test('waiters keep their arrival order through many retry delays', async ({ assert }) => {
    const locks = new LockFactory(new MemoryStore(), { retry: { delay: 40, timeout: '30s' } })
    const holder = locks.createLock('long', '10s')
    await holder.acquire()

    const order: number[] = []
    const waiters = [0, 1, 2, 3, 4].map(async (index) => {
      await sleep(index * 20)
      await locks.createLock('long', '10s').run(() => order.push(index))
    })
    /**
     * Each waiter's wait ends a dozen times or more meanwhile: it tries,
     * is refused, and goes back to its place
     */
    await sleep(1000)
    await holder.release()
    await Promise.all(waiters)
    assert.deepEqual(order, [0, 1, 2, 3, 4])
  })

  test('waiters whose acquires start in the same millisecond keep their order too', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore(), { ttl: '5s', retry: { delay: 20 } })
    const order: number[] = []
    await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        locks.createLock('burst').run(async () => {
          order.push(index)
          await sleep(15)
        })
      )
    )
    assert.deepEqual(
      order,
      Array.from({ length: 30 }, (_, index) => index)
    )
  })

  test('waiters are woken one by one in arrival order, without polling', async ({ assert }) => {
    const store = new CountingMemoryStore()
    const locks = new LockFactory(store, { retry: { delay: '30s', timeout: '60s' } })
    const holder = locks.createLock('line')
    await holder.acquire()

    const order: number[] = []
    const waiters = [0, 1, 2, 3, 4, 5].map(async (index) => {
      await sleep(index * 10)
      await locks.createLock('line').run(async () => {
        order.push(index)
        await sleep(5)
      })
    })
    await sleep(100)
    store.saves = 0
    await holder.release()
    await Promise.all(waiters)

    assert.deepEqual(order, [0, 1, 2, 3, 4, 5])
    /**
     * One try per waiter after being woken: nobody polled (the 30 s delay
     * would have made this test time out)
     */
    assert.isAtMost(store.saves, 6 + 2)
    assert.deepEqual(store.size, { locks: 0, waiting: 0 })
  })

  test('an owner that releases and asks again queues behind the waiters ({name})')
    .with([
      { name: 'lock', create: (locks: LockFactory) => locks.createLock('loop') },
      { name: 'semaphore of 2', create: (locks: LockFactory) => locks.createSemaphore('loop', 2) },
    ])
    .run(async ({ assert }, { create }) => {
      const locks = new LockFactory(new MemoryStore(), { retry: { delay: '30s', timeout: '30s' } })
      const order: number[] = []
      await Promise.all(
        Array.from({ length: 8 }, async (_, worker) => {
          for (let round = 0; round < 10; round++) {
            await create(locks).run(() => order.push(worker))
          }
        })
      )
      assert.lengthOf(order, 80)
      /**
       * Barging would let the holders run their 10 rounds back to back
       */
      assert.sameMembers([...new Set(order.slice(0, 16))], [0, 1, 2, 3, 4, 5, 6, 7])
    })

  test('memory stays bounded for locks that expire without release', async ({ assert }) => {
    const store = new MemoryStore()
    const locks = new LockFactory(store)
    for (let index = 0; index < 5000; index++) await locks.createLock(`burst.${index}`, 1).acquire()
    await sleep(10)
    for (let index = 0; index < 5000; index++) await locks.createLock(`next.${index}`, 1).acquire()
    assert.isBelow(store.size.locks, 8000)
  })

  test('a waiter that gives up leaves the line', async ({ assert }) => {
    const store = new MemoryStore()
    const locks = new LockFactory(store)
    await locks.createLock('busy').acquire()
    const results = await Promise.all(
      [1, 2, 3].map(() =>
        locks.createLock('busy').acquire({ retry: { timeout: 100, delay: 1000 } })
      )
    )
    assert.deepEqual(results, [false, false, false])
    assert.equal(store.size.waiting, 0)
  })
})

test.group('Lock | run and the watchdog', () => {
  test('throwIfLost sees a pause past the ttl before the watchdog does', async ({ assert }) => {
    const lock = new LockFactory(new MemoryStore()).createLock('paused', 300)
    let abortedAtCheck: boolean | undefined
    await assert.rejects(
      () =>
        lock.run(
          ({ signal, throwIfLost }) => {
            throwIfLost()
            /**
             * The process stops (a GC pause, SIGSTOP): no timer runs
             */
            const resumeAt = performance.now() + 500
            while (performance.now() < resumeAt) {}
            abortedAtCheck = signal.aborted
            throwIfLost()
          },
          { autoExtend: true }
        ),
      errors.E_LOCK_LOST as any
    )
    assert.isFalse(abortedAtCheck)
  })

  test('throwIfLost throws the signal reason once the watchdog lost the lock', async ({
    assert,
  }) => {
    const store = new MemoryStore()
    const lock = new LockFactory(store).createLock('taken', 150)
    await assert.rejects(
      () =>
        lock.run(
          async ({ signal, throwIfLost }) => {
            await store.forceDelete(lock.storeKey)
            await new Promise((resolve) => signal.addEventListener('abort', resolve))
            throwIfLost()
          },
          { autoExtend: true }
        ),
      errors.E_LOCK_LOST as any
    )
  })

  test('a wall clock step does not expire the lock locally', async ({ assert }) => {
    const lock = new LockFactory(new MemoryStore()).createLock('clock', '10s')
    assert.isTrue(await lock.acquire())
    const realNow = Date.now
    Date.now = () => realNow() + 3_600_000
    try {
      assert.isFalse(lock.isExpired())
      assert.isAbove(lock.getRemainingTime()!, 9000)
      assert.isTrue(await lock.isOwned())
    } finally {
      Date.now = realNow
    }
    await lock.release()
  })

  test('autoExtend keeps a 300 ms lock alive through 1.5 s of work, then leaves no timer', async ({
    assert,
  }) => {
    const emitter = new RecordingEmitter()
    const locks = new LockFactory(new MemoryStore(), { emitter })
    const before = timers()
    const [ran, result] = await locks.createLock('long', 300).run(
      async ({ signal }) => {
        for (let step = 0; step < 15; step++) {
          await sleep(100)
          assert.isFalse(await locks.createLock('long').acquireImmediately())
        }
        return signal.aborted
      },
      { autoExtend: true }
    )
    assert.deepEqual([ran, result], [true, false])
    assert.isAtLeast(emitter.names().filter((name) => name === 'lock:extended').length, 3)
    assert.isTrue(await locks.createLock('long').acquireImmediately())
    /**
     * Timers of earlier test files may end meanwhile, never start
     */
    assert.isAtMost(timers(), before)
  })

  test('a lost lock aborts the signal with E_LOCK_LOST and is not released', async ({ assert }) => {
    const emitter = new RecordingEmitter()
    const locks = new LockFactory(new MemoryStore(), { emitter })
    const thief = locks.createLock('stolen', '10s')
    let reason: unknown

    const [ran] = await locks.createLock('stolen', 300).run(
      async ({ signal }) => {
        await locks.createLock('stolen').forceRelease()
        await thief.acquire()
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
        reason = signal.reason
      },
      { autoExtend: true }
    )
    assert.isTrue(ran)
    assert.instanceOf(reason, errors.E_LOCK_LOST)
    assert.include(emitter.names(), 'lock:lost')
    assert.isTrue(await thief.isOwned())
  })

  test('acquire with autoExtend keeps the lock until release, then stops extending', async ({
    assert,
  }) => {
    const emitter = new RecordingEmitter()
    const locks = new LockFactory(new MemoryStore(), { emitter })
    const before = timers()
    const lock = locks.createLock('manual', 300)
    assert.isTrue(await lock.acquire({ autoExtend: true }))
    await sleep(1000)
    assert.isTrue(await lock.isOwned())
    assert.isFalse(lock.lostSignal!.aborted)
    await lock.release()
    const extensions = emitter.names().filter((name) => name === 'lock:extended').length
    assert.isAtLeast(extensions, 3)
    /**
     * Timers of earlier test files may end meanwhile, never start
     */
    assert.isAtMost(timers(), before)
    await sleep(400)
    assert.equal(emitter.names().filter((name) => name === 'lock:extended').length, extensions)
    assert.isTrue(await locks.createLock('manual').acquireImmediately())
  })

  test('lostSignal aborts when an auto-extended lock is taken over', async ({ assert }) => {
    const locks = new LockFactory(new MemoryStore())
    const lock = locks.createLock('taken', 300)
    await lock.acquire({ autoExtend: true })
    await locks.createLock('taken').forceRelease()
    await locks.createLock('taken', '10s').acquire()
    await new Promise((resolve) =>
      lock.lostSignal!.addEventListener('abort', resolve, { once: true })
    )
    assert.instanceOf(lock.lostSignal!.reason, errors.E_LOCK_LOST)
    await assert.rejects(() => lock.release(), errors.E_LOCK_NOT_OWNED as any)
  })

  test('a run after one that lost its lock gets a signal of its own, and releases', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore())
    const lock = locks.createLock('again', 300)
    const thief = locks.createLock('again', '10s')
    await lock.run(
      async ({ signal }) => {
        await locks.createLock('again').forceRelease()
        await thief.acquire()
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
      },
      { autoExtend: true }
    )
    await thief.release()

    const [ran, aborted] = await lock.run(({ signal }) => signal.aborted)
    assert.deepEqual([ran, aborted], [true, false])
    assert.isUndefined(lock.lostSignal)
    assert.isFalse(await lock.isLocked())
  })

  test('an extension answered after the release does not bring the lock back', async ({
    assert,
  }) => {
    const emitter = new RecordingEmitter()
    const store = new SlowExtendStore()
    const lock = new LockFactory(store, { emitter }).createLock('late', '5s')
    await lock.acquire()
    const extended = lock.extend()
    await lock.release()
    await extended
    assert.deepEqual(emitter.names(), ['lock:acquired', 'lock:released'])
    assert.isNull(lock.getRemainingTime())
    assert.isFalse(await lock.isLocked())
  })

  test('a failed release after run is logged, the result is kept', async ({ assert }) => {
    const logger = new RecordingLogger()
    const store = new MemoryStore()
    const locks = new LockFactory(store, { logger })
    const lock = locks.createLock('flaky', '5s')
    const [ran, result] = await lock.run(async ({ fencingToken }) => {
      assert.isNumber(fencingToken)
      store.delete = async () => {
        throw new Error('connection reset')
      }
      return 'kept'
    })
    assert.deepEqual([ran, result], [true, 'kept'])
    assert.lengthOf(logger.warnings, 1)
  })
})

/**
 * A memory store whose tries answer late, as a slow server would
 */
class SlowSaveStore extends MemoryStore {
  async save(key: string, owner: string, ttl: number | null) {
    await sleep(1500)
    return super.save(key, owner, ttl)
  }
}

test.group('Lock | one object, several acquisitions', () => {
  test('a store answering within the timeout, later than a second, is waited for', async ({
    assert,
  }) => {
    const lock = new LockFactory(new SlowSaveStore()).createLock('slow', '10s')
    assert.isTrue(await lock.acquire({ retry: { timeout: '5s' } }))
    await lock.release()
  }).timeout(20_000)

  test('a semaphore held by this object does not take a second slot on a second acquire', async ({
    assert,
  }) => {
    const store = new MemoryStore()
    const semaphore = new LockFactory(store).createSemaphore('pool', 2, null)
    assert.isTrue(await semaphore.acquireImmediately())
    assert.isFalse(await semaphore.acquireImmediately())
    assert.lengthOf(await store.slotOwners(semaphore.storeKey), 1)
    await semaphore.release()
    assert.lengthOf(await store.slotOwners(semaphore.storeKey), 0)
  })

  test('a run that overran its ttl does not free the newer run of the same object', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore(), { retry: { delay: 10 } })
    const shared = locks.createLock('overrun', 200)
    const { promise: secondHolds, resolve: entered } = Promise.withResolvers<void>()
    const { promise: firstDone, resolve: finishFirst } = Promise.withResolvers<void>()
    const first = shared.run(() => sleep(400).then(() => finishFirst()))
    await sleep(250)
    const second = shared.run(async () => {
      entered()
      await firstDone
      await sleep(20)
      /**
       * The first run's release has run by now: the lock is still this run's
       */
      return locks.createLock('overrun', '10s').acquireImmediately()
    })
    await secondHolds
    await first
    const [, otherGotIt] = await second
    assert.isFalse(otherGotIt)
  })
})
