/**
 * Property-based tests of the Lock state machine against a model: random
 * sequences of acquire, release, extend, force release, expiry and
 * contention by several Lock objects (owners) on one key. Whatever the
 * order, at most one owner holds the key, fencing tokens increase, and a
 * stale owner can neither release nor extend (E_LOCK_NOT_OWNED, nothing
 * changes).
 *
 * Expiry uses the real clock with a short ttl. A command never runs close
 * to the holder's expiry: when it would, it first waits the expiry out.
 * Should the machine stall a command across the expiry anyway, the model
 * accepts both outcomes (it is truly ambiguous) and follows the one seen.
 */
import assert from 'node:assert/strict'
import { test } from '@japa/runner'
import fc from 'fast-check'
import { E_LOCK_NOT_OWNED } from '../../src/errors.ts'
import type { Lock } from '../../src/lock.ts'
import { LockFactory } from '../../src/lock_factory.ts'
import { sleep } from '../../src/wait.ts'
import { SERVICES, serviceAvailable, uniqueKey } from '../helpers/services.ts'
import { openBackend, type BackendSpec, type OpenBackend } from './helpers/backends.ts'
import { count } from './helpers/figures.ts'

const OWNERS = 4
const TTL = 150
/**
 * A command starting this close to the holder's expiry waits it out first
 */
const GUARD = 60
/**
 * How much later than the lock's local view a store may expire it
 * (rounding to whole ms, the store call's own duration is accounted for)
 */
const SLACK = 5
const RUNS = 25

interface Model {
  holder: number | null
  /**
   * The store expires the holder somewhere in [expiresFrom, expiresBy]
   */
  expiresFrom: number
  expiresBy: number
  lastToken: number
  commands: number
}

interface Real {
  locks: Lock[]
}

type LockCommand = fc.AsyncCommand<Model, Real>

/**
 * Waits out an expiry the next command could straddle
 */
async function settle(model: Model) {
  if (model.holder === null || Date.now() < model.expiresFrom - GUARD) return
  await sleep(model.expiresBy + 1 - Date.now())
  model.holder = null
}

/**
 * Whether the holder was alive for the whole of a call that ended at `end`
 */
function aliveThroughout(model: Model, end: number): boolean {
  return model.holder !== null && end < model.expiresFrom
}

function took(model: Model, lock: number, token: number | null, start: number, end: number) {
  assert.ok(token !== null && token > model.lastToken, `token ${token} after ${model.lastToken}`)
  model.lastToken = token
  model.holder = lock
  model.expiresFrom = start + TTL
  model.expiresBy = end + TTL + SLACK
}

function isNotOwned(error: unknown) {
  return error instanceof E_LOCK_NOT_OWNED
}

/**
 * A stale call changed nothing: the holder, when surely alive, still holds
 */
async function holderUnchanged(model: Model, real: Real) {
  if (model.holder === null) return
  const owned = await real.locks[model.holder].isOwned()
  if (aliveThroughout(model, Date.now())) assert.ok(owned, 'the holder lost the lock')
  else if (!owned) model.holder = null
}

class Acquire implements LockCommand {
  constructor(readonly lock: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    model.commands++
    await settle(model)
    const start = Date.now()
    const lock = real.locks[this.lock]
    const acquired = await lock.acquireImmediately()
    const end = Date.now()
    if (model.holder === null) {
      assert.ok(acquired, 'a free key was refused')
      took(model, this.lock, lock.fencingToken, start, end)
    } else if (aliveThroughout(model, end)) {
      assert.ok(!acquired, `owner ${this.lock} took a key owner ${model.holder} holds`)
    } else if (acquired) {
      took(model, this.lock, lock.fencingToken, start, end)
    }
  }
  toString = () => `acquire(${this.lock})`
}

/**
 * Runs `release` or `extend` for one owner and checks its answer against
 * the model: a non-holder is refused, a holder whose ttl cannot have run
 * out succeeds, a holder past it may be refused. Returns the error (null
 * on success) when the owner was the holder, undefined otherwise.
 */
async function holderCall(
  model: Model,
  real: Real,
  lock: number,
  name: 'release' | 'extend'
): Promise<{ error: unknown; end: number } | undefined> {
  const error = await real.locks[lock][name]().then(
    () => null,
    (failure: unknown) => failure
  )
  const end = Date.now()
  if (model.holder !== lock) {
    assert.ok(isNotOwned(error), `a stale ${name} by ${lock} gave ${error}`)
    await holderUnchanged(model, real)
    return undefined
  }
  if (aliveThroughout(model, end)) assert.equal(error, null, `the holder's ${name} failed`)
  else if (error) assert.ok(isNotOwned(error), String(error))
  return { error, end }
}

class Release implements LockCommand {
  constructor(readonly lock: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    model.commands++
    await settle(model)
    if (await holderCall(model, real, this.lock, 'release')) model.holder = null
  }
  toString = () => `release(${this.lock})`
}

class Extend implements LockCommand {
  constructor(readonly lock: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    model.commands++
    await settle(model)
    const start = Date.now()
    const answer = await holderCall(model, real, this.lock, 'extend')
    if (!answer) return
    if (answer.error) {
      model.holder = null
    } else {
      model.expiresFrom = start + TTL
      model.expiresBy = answer.end + TTL + SLACK
    }
  }
  toString = () => `extend(${this.lock})`
}

class ForceRelease implements LockCommand {
  constructor(readonly lock: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    model.commands++
    await real.locks[this.lock].forceRelease()
    model.holder = null
    assert.ok(!(await real.locks[this.lock].isLocked()), 'still locked after forceRelease')
  }
  toString = () => `forceRelease(${this.lock})`
}

/**
 * Time passes until the holder's ttl is surely over
 */
class Expire implements LockCommand {
  check = () => true
  async run(model: Model, real: Real) {
    model.commands++
    if (model.holder !== null) await sleep(model.expiresBy + 1 - Date.now())
    model.holder = null
    assert.ok(!(await real.locks[0].isLocked()), 'still locked after its ttl')
  }
  toString = () => 'expire'
}

/**
 * Every owner tries at once: one wins a free key, none a held one
 */
class Race implements LockCommand {
  check = () => true
  async run(model: Model, real: Real) {
    model.commands++
    await settle(model)
    const start = Date.now()
    const results = await Promise.all(real.locks.map((lock) => lock.acquireImmediately()))
    const end = Date.now()
    const winners = results.flatMap((acquired, index) => (acquired ? [index] : []))
    assert.ok(winners.length <= 1, `owners ${winners} hold the key together`)
    if (model.holder === null) assert.equal(winners.length, 1, 'nobody took a free key')
    else if (aliveThroughout(model, end)) assert.equal(winners.length, 0, 'a held key was taken')
    if (winners.length === 1)
      took(model, winners[0], real.locks[winners[0]].fencingToken, start, end)
  }
  toString = () => 'race'
}

/**
 * The store agrees with the model about who holds the key
 */
class Inspect implements LockCommand {
  check = () => true
  async run(model: Model, real: Real) {
    model.commands++
    await settle(model)
    const owned = await Promise.all(real.locks.map((lock) => lock.isOwned()))
    const end = Date.now()
    const owners = owned.flatMap((isOwner, index) => (isOwner ? [index] : []))
    assert.ok(owners.length <= 1, `owners ${owners} hold the key together`)
    if (model.holder === null) assert.deepEqual(owners, [], 'a free key has an owner')
    else if (aliveThroughout(model, end)) assert.deepEqual(owners, [model.holder])
  }
  toString = () => 'inspect'
}

const owner = fc.integer({ min: 0, max: OWNERS - 1 })
const commands = fc.commands<Model, Real, false>(
  [
    owner.map((lock) => new Acquire(lock)),
    owner.map((lock) => new Release(lock)),
    owner.map((lock) => new Extend(lock)),
    owner.map((lock) => new ForceRelease(lock)),
    fc.constant(new Expire()),
    fc.constant(new Race()),
    fc.constant(new Inspect()),
  ],
  { maxCommands: 40, size: 'large' }
)

async function checkModel(spec: BackendSpec, runs: number) {
  const backend: OpenBackend = openBackend(spec)
  const factory = new LockFactory(backend.store, { prefix: 'reliability-model' })
  let total = 0
  try {
    await fc.assert(
      fc.asyncProperty(commands, async (sequence) => {
        const key = uniqueKey('model')
        const locks = Array.from({ length: OWNERS }, () => factory.createLock(key, TTL))
        const model: Model = {
          holder: null,
          expiresFrom: 0,
          expiresBy: 0,
          lastToken: 0,
          commands: 0,
        }
        try {
          await fc.asyncModelRun(() => ({ model, real: { locks } }), sequence)
        } finally {
          total += model.commands
          await locks[0].forceRelease()
        }
      }),
      { numRuns: runs }
    )
  } finally {
    await backend.close()
  }
  count('modelRuns', runs)
  count('modelCommands', total)
}

const redisAvailable = await serviceAvailable('redis')

test.group('Reliability | Lock state machine against a model', () => {
  test(`memory store: ${RUNS} random runs of ${OWNERS} owners on one key`, async () => {
    await checkModel({ kind: 'memory' }, RUNS)
  }).timeout(120_000)

  test(`Redis store: ${RUNS} random runs of ${OWNERS} owners on one key`, async () => {
    await checkModel({ kind: 'redis', port: SERVICES.redis.port }, RUNS)
  })
    .skip(!redisAvailable, 'Redis is not reachable')
    .timeout(120_000)
})
