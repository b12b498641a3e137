/**
 * One Lock object acquired again while an earlier acquisition of it (a
 * run, a release in progress, a concurrent acquire) has not ended: each
 * acquisition keeps its own release, signal, watchdog and lock.hold span.
 */
import { test } from '@japa/runner'
import type { TestContext } from '@japa/runner/core'
import { trace } from '@opentelemetry/api'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { LockFactory } from '../index.ts'
import { MemoryStore } from '../src/stores/memory.ts'
import { SDK_RECHECK_MS } from '../src/telemetry/spans.ts'
import { sleep } from '../src/wait.ts'

/**
 * The memory store answering a release 30 ms after carrying it out, as a
 * database connection of a pool may while another connection goes on
 */
class LateReleaseAnswerStore extends MemoryStore {
  async delete(key: string, owner: string) {
    await super.delete(key, owner)
    await sleep(30)
  }
}

/**
 * The memory store whose forceDelete fails as a backend that is down
 */
class FailingForceDeleteStore extends MemoryStore {
  async forceDelete(): Promise<void> {
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
  }
}

/**
 * The memory store answering its first try 600 ms after carrying it out,
 * as a slow server would
 */
class LateFirstSaveStore extends MemoryStore {
  #late = true
  lateAnswer = Promise.withResolvers<void>()
  async save(key: string, owner: string, ttl: number | null) {
    const result = await super.save(key, owner, ttl)
    if (this.#late) {
      this.#late = false
      await sleep(600)
      setTimeout(() => this.lateAnswer.resolve(), 0)
    }
    return result
  }
}

async function registerTracer(t: TestContext) {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  trace.setGlobalTracerProvider(provider)
  await sleep(SDK_RECHECK_MS + 1)
  t.cleanup(async () => {
    trace.disable()
    await provider.shutdown()
  })
  return (name: string) => exporter.getFinishedSpans().filter((span) => span.name === name)
}

test.group('Lock | run() and a newer acquisition of the same object', () => {
  test('the end of a run that overran its ttl does not release the acquisition that followed it', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore(), { retry: { delay: 20 } })
    const lock = locks.createLock('job', 300)
    let running!: () => void
    const started = new Promise<void>((resolve) => (running = resolve))
    const run = lock.run(async () => {
      running()
      await sleep(450)
    })
    await started
    /**
     * Called while the run holds the lock: taken once the run's ttl ran out
     */
    assert.isTrue(await lock.acquire())
    await run
    assert.isFalse(lock.isExpired(), 'the second acquisition is still within its ttl')
    assert.isTrue(await lock.isLocked(), 'the run released the second acquisition at its end')
    assert.isFalse(
      await locks.createLock('job').acquireImmediately(),
      'another owner took the lock the second acquisition holds'
    )
  })

  test('throwIfLost() throws once the run ran past its ttl, also after a newer acquisition', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore(), { retry: { delay: 20 } })
    const lock = locks.createLock('job', 100)
    let lostError: unknown
    const run = lock.run(async ({ throwIfLost }) => {
      await sleep(170)
      try {
        throwIfLost()
      } catch (error) {
        lostError = error
      }
    })
    /**
     * Past the run's ttl: the newer acquire draws a fresh owner
     */
    await sleep(120)
    assert.isTrue(await lock.acquire(), 'a newer acquisition of the same object')
    await run
    assert.instanceOf(lostError, Error, 'throwIfLost() did not throw 70 ms past the run ttl')
  })

  test('the run signal aborts when the lock is force-released, also with another acquire of the object waiting', async ({
    assert,
  }) => {
    const locks = new LockFactory(new MemoryStore(), { retry: { delay: 20 } })
    const lock = locks.createLock('job', 90)
    let aborted: boolean | undefined
    let running!: () => void
    const started = new Promise<void>((resolve) => (running = resolve))
    const run = lock.run(
      async ({ signal }) => {
        running()
        await sleep(300)
        aborted = signal.aborted
      },
      { autoExtend: true }
    )
    await started
    const second = lock.acquire()
    await sleep(10)
    await locks.createLock('job').forceRelease()
    assert.isTrue(await second)
    await run
    assert.isTrue(aborted, 'the run kept a silent signal after its lock was force-released')
  })

  test('the late answer of an aborted try does not free an overlapping acquire of the object', async ({
    assert,
  }) => {
    const store = new LateFirstSaveStore()
    const locks = new LockFactory(store, { retry: { delay: 20 } })
    const lock = locks.createLock('job', 400)
    const stop = new AbortController()
    const first = lock.acquire({ signal: stop.signal }).catch(() => false)
    /**
     * Started while the first try is in progress: the same owner, taken
     * once what the first try took expired (400 ms)
     */
    const second = lock.acquire()
    await sleep(10)
    stop.abort()
    assert.isFalse(await first)
    assert.isTrue(await second)
    await store.lateAnswer.promise
    assert.isFalse(
      await locks.createLock('job').acquireImmediately(),
      'the late answer of the aborted try released the second acquire'
    )
    await lock.release()
  })
})

test.group('Lock | overlapping acquires of one semaphore object', () => {
  test('overlapping acquires of one semaphore leave no slot behind once released as often', async ({
    assert,
  }) => {
    const store = new MemoryStore()
    const locks = new LockFactory(store)
    const semaphore = locks.createSemaphore('pool', 3, null)
    const answers = await Promise.all([
      semaphore.acquire({ retry: { timeout: 100 } }),
      semaphore.acquire({ retry: { timeout: 100 } }),
    ])
    /**
     * The second acquire waits for the slot of the first: one object holds
     * one slot at a time
     */
    for (const acquired of answers) if (acquired) await semaphore.release().catch(() => {})
    assert.deepEqual(
      await store.slotOwners('lock:pool'),
      [],
      'a slot without expiry is left behind'
    )
  })
})

test.group('Lock | telemetry of a release answered late', () => {
  test('a release ends its own lock.hold span, not the one of the acquisition that followed', async (t) => {
    const { assert } = t
    const spans = await registerTracer(t)
    const lock = new LockFactory(new LateReleaseAnswerStore()).createLock('job', '10s')
    assert.isTrue(await lock.acquire())
    const released = lock.release()
    await sleep(5)
    assert.isTrue(await lock.acquire())
    await released
    assert.deepEqual(
      spans('lock.hold').map((span) => span.attributes['lock.hold.outcome']),
      ['released'],
      'the first hold is reported lost and the second one, still held, released'
    )
    await lock.release()
    assert.deepEqual(
      spans('lock.hold').map((span) => span.attributes['lock.hold.outcome']),
      ['released', 'released']
    )
  })
})

test.group('Lock | a failed forceRelease', () => {
  test('with autoExtend, a forceRelease that failed leaves the lock watched', async ({
    assert,
  }) => {
    const lock = new LockFactory(new FailingForceDeleteStore()).createLock('job', 90)
    assert.isTrue(await lock.acquire({ autoExtend: true }))
    const signal = lock.lostSignal!
    await assert.rejects(() => lock.forceRelease())
    await sleep(300)
    /**
     * Either the watchdog still extends the lock, or its loss aborts the
     * signal: never a lock gone with a silent lostSignal
     */
    const held = await lock.isOwned()
    assert.isTrue(held || signal.aborted, 'the lock expired and lostSignal never aborted')
    await lock.release().catch(() => {})
  })
})
