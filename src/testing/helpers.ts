/**
 * The `assert` of the test context comes from the @japa/assert plugin
 */
import type {} from '@japa/assert'
import type { Assert } from '@japa/assert'
import type { test } from '@japa/runner'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import type { Lock } from '../lock.ts'
import type { LockFactory } from '../lock_factory.ts'
import type { AcquireResult, LockEventEmitter, LockStore } from '../types.ts'
import { settleWithin, sleep } from '../wait.ts'
import type { StoreSuiteOptions } from './store_suite.ts'

/**
 * A bound on a promise the store makes ("woken on release", "retried
 * when the holder expires"): far longer than a loaded machine needs, far
 * shorter than the retry delay a store that broke it would sleep
 */
export const PROMISE_BOUND = 10_000

/**
 * The retry delay of waiters that rely on a wake-up, and the ttl of the
 * holders they wait for: a waiter that is not woken sleeps past
 * PROMISE_BOUND
 */
export const LONG_DELAY = '60s'

/**
 * The names of the events the locks emit, in order
 */
export class RecordingEmitter implements LockEventEmitter {
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
 * refused. `run` gets the worker's number.
 */
export async function crowd(
  workers: number,
  rounds: number,
  holdMs: number,
  run: (section: () => Promise<void>, worker: number) => Promise<[boolean, unknown]>
) {
  let inside = 0
  let peak = 0
  let sections = 0
  let refused = 0
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let round = 0; round < rounds; round++) {
        const [ran] = await run(async () => {
          peak = Math.max(peak, ++inside)
          await sleep(holdMs)
          sections++
          inside--
        }, worker)
        if (!ran) refused++
      }
    })
  )
  return { peak, sections, refused }
}

export type Group = Parameters<Parameters<typeof test.group>[1]>[0]

/**
 * What a test of the suite works with: the store, a second instance of
 * it standing for another server (the same instance for a process-local
 * store), and a key prefix of its own
 */
export interface SuiteContext {
  store: LockStore
  prefix: string
  /**
   * Another instance from the author's factory, on the same locks
   */
  other(): Promise<LockStore>
}

/**
 * A store of its own and a fresh key prefix for every test of the group,
 * closed after it; `skip` is why the group does not run, if it does not
 */
export function storePerTest(
  group: Group,
  options: StoreSuiteOptions,
  skip: string | false,
  timeout: number
): SuiteContext {
  const close = (store: LockStore) =>
    options.closeStore ? options.closeStore(store) : store.close?.()
  let store: LockStore | undefined
  let peer: Promise<LockStore> | undefined
  const current: SuiteContext = {
    prefix: '',
    get store() {
      return store!
    },
    other() {
      if (options.processLocal) return Promise.resolve(store!)
      peer ??= Promise.resolve(options.createStore())
      return peer
    },
  }
  group.tap((t) => {
    t.skip(skip !== false, skip || undefined)
    t.timeout(timeout)
  })
  group.each.setup(async () => {
    current.prefix = `suite:${process.pid}:${Math.random().toString(36).slice(2, 10)}`
    store = await options.createStore()
    const opened = store
    return async () => {
      const second = peer
      peer = undefined
      store = undefined
      try {
        if (second) await close(await second)
      } finally {
        await close(opened)
      }
    }
  })
  return current
}

export function acquired(answer: boolean | AcquireResult): boolean {
  return typeof answer === 'boolean' ? answer : answer.acquired
}

/**
 * Checks through the store, not the lock's local view, that `lock` holds
 * its key: the store says so where it can tell the owner, and another
 * owner's try (through `other`, another instance) is refused
 */
export async function assertHeld(assert: Assert, lock: Lock, store: LockStore, other: LockStore) {
  assert.isTrue(await store.exists(lock.storeKey), 'the store has no lock on the key')
  if (store.owner) assert.equal(await store.owner(lock.storeKey), lock.getOwner())
  const intruder = await other.save(lock.storeKey, crypto.randomUUID(), 10_000)
  assert.isFalse(acquired(intruder), 'another owner took the lock')
}

/**
 * Checks through the store that `lock` no longer holds its key: it
 * cannot extend it
 */
export async function assertNotHeld(assert: Assert, lock: Lock, store: LockStore) {
  if (store.owner) assert.notEqual(await store.owner(lock.storeKey), lock.getOwner())
  await assert.rejects(
    () => store.extend(lock.storeKey, lock.getOwner(), 10_000),
    E_LOCK_NOT_OWNED as any
  )
}

/**
 * Waits (at most PROMISE_BOUND) until the store no longer holds the key,
 * and fails otherwise
 */
export async function untilFree(assert: Assert, store: LockStore, key: string) {
  const deadline = performance.now() + PROMISE_BOUND
  while (await store.exists(key)) {
    if (performance.now() > deadline) assert.fail(`"${key}" never expired`)
    await sleep(20)
  }
}

/**
 * A waiter of `waiters` waits, in vain, for a key of its own that a lock
 * of `holders` holds: from then on the store has what it wakes waiters
 * with (a subscription, a listener), and a line of waiters in which tries
 * in progress count. Resolves to the outcome of that wait.
 */
export async function waitOnce(
  waiters: LockFactory,
  holders: LockFactory = waiters
): Promise<boolean> {
  const holder = holders.createLock('first wait', '10s')
  await holder.acquire()
  const outcome = await waiters
    .createLock('first wait')
    .acquire({ retry: { delay: 100, timeout: 300 } })
  await holder.release()
  return outcome
}

/**
 * Whether the promise settled (either way) within PROMISE_BOUND
 */
export async function settlesInBound(promise: Promise<unknown>): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true
  )
  return (await settleWithin(settled, PROMISE_BOUND)) === true
}

/**
 * A waiter is in line behind `holder`: the holder releases, and the waiter
 * must get the lock (or slot) within PROMISE_BOUND, woken or by its poll
 */
export async function assertServedAfterRelease(
  assert: Assert,
  holder: { release(): Promise<void> },
  waiting: Promise<boolean>
) {
  await sleep(100)
  await holder.release()
  assert.isTrue(await settlesInBound(waiting), 'the waiter was not woken by the release')
  assert.isTrue(await waiting)
}

/**
 * Counts the calls of the store's `save` and `waitForRelease` from now on;
 * `waiting()` resolves at the next `waitForRelease` call
 */
export function watchCalls(target: LockStore) {
  const calls = { saves: 0, waits: 0 }
  let onWait: (() => void) | undefined
  const save = target.save.bind(target)
  target.save = (...args) => {
    calls.saves++
    return save(...args)
  }
  const wait = target.waitForRelease?.bind(target)
  if (wait) {
    target.waitForRelease = (...args) => {
      calls.waits++
      onWait?.()
      return wait(...args)
    }
  }
  return {
    calls,
    waiting: () => new Promise<void>((resolve) => (onWait = resolve)),
  }
}

/**
 * Moves the app's clock (`Date.now()`, `new Date()`) by `ms` until the
 * returned function is called. Timers and `performance.now()` keep
 * running as before: only what reads the wall clock sees the shift.
 */
export function shiftAppClock(ms: number): () => void {
  const RealDate = Date
  const realNow = RealDate.now.bind(RealDate)
  const shifted = new Proxy(RealDate, {
    construct(target, args, newTarget) {
      return Reflect.construct(target, args.length ? args : [realNow() + ms], newTarget)
    },
    apply() {
      return new RealDate(realNow() + ms).toString()
    },
    get(target, property, receiver) {
      if (property === 'now') return () => realNow() + ms
      return Reflect.get(target, property, receiver)
    },
  })
  globalThis.Date = shifted
  return () => {
    globalThis.Date = RealDate
  }
}
